//! Hand-off: a generation's parts are uploaded to deep storage, then published with the
//! stream offsets they cover in one compare-and-set metadata command (the only commit), and
//! kept served until a historical serves them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use eddy_meta::{Command, MetaError, SegmentRecord};
use eddy_types::spec::supervisor::SupervisorSpec;

use super::StreamContext;
use super::appender::{Appender, Part, discard};
use super::group::GroupState;
use super::task::blocking;
use crate::metrics;

/// Uploads every part and publishes them with the offsets; on a conflict (another task or a
/// reset moved the offsets) everything is dropped and the next generation reads again from
/// what is committed.
pub(super) async fn publish(
    ctx: &Arc<StreamContext>,
    spec: &Arc<SupervisorSpec>,
    state: &GroupState,
    appender: &mut Appender,
    expected: &BTreeMap<u32, Option<u64>>,
    end: &BTreeMap<u32, u64>,
) -> Result<(), String> {
    let unchanged = expected
        .iter()
        .all(|(p, e)| e.is_some() && *e == end.get(p).copied());
    if appender.is_empty() && unchanged {
        return Ok(());
    }
    state.publishing.store(true, Ordering::Relaxed);
    let result = publish_parts(ctx, spec, appender, expected, end).await;
    state.publishing.store(false, Ordering::Relaxed);
    if result.is_ok() {
        state.published.fetch_add(1, Ordering::Relaxed);
    }
    result
}

async fn publish_parts(
    ctx: &Arc<StreamContext>,
    spec: &Arc<SupervisorSpec>,
    appender: &mut Appender,
    expected: &BTreeMap<u32, Option<u64>>,
    end: &BTreeMap<u32, u64>,
) -> Result<(), String> {
    let ds = spec.datasource().clone();
    let parts = blocking(|| appender.finish())?;
    let now = ctx.clock.now_ms();
    let mut records = Vec::with_capacity(parts.len());
    for p in &parts {
        let key = format!("{}/index.eddy", p.id.storage_path());
        let up = match ctx.deep.upload(&key, &p.path).await {
            Ok(up) => up,
            Err(e) => {
                discard(&ctx.node, &parts);
                metrics::HANDOFFS
                    .with_label_values(&[ds.as_str(), "failed"])
                    .inc();
                return Err(format!("uploading {}: {e}", p.id));
            }
        };
        records.push(SegmentRecord {
            id: p.id.clone(),
            size: up.size,
            num_rows: p.num_rows,
            columns: p.columns.clone(),
            path: key,
            crc32: up.crc32,
            used: true,
            created: now,
        });
    }
    let ids: Vec<_> = records.iter().map(|r| r.id.clone()).collect();
    if !ids.is_empty() {
        super::fault::point(super::fault::AFTER_UPLOAD);
    }
    let cmd = Command::PublishStream {
        datasource: ds.clone(),
        stream: spec.settings.topic.clone(),
        start: expected.clone(),
        end: end.clone(),
        segments: records,
    };
    match ctx.meta.apply(cmd).await {
        Ok(_) => {
            if !ids.is_empty() {
                super::fault::point(super::fault::AFTER_PUBLISH);
            }
            metrics::HANDOFFS
                .with_label_values(&[ds.as_str(), "published"])
                .inc();
            tracing::info!(datasource = %ds, segments = ids.len(), offsets = ?end, "published realtime segments and offsets");
            // Published: served whichever replica of the group is active from now on.
            ctx.node.release(&ids);
            hand_off(
                ctx.clone(),
                parts,
                ids,
                spec.settings.handoff_condition_timeout_ms,
            );
            Ok(())
        }
        Err(e) => {
            discard(&ctx.node, &parts);
            let outcome = if matches!(e, MetaError::Conflict(_)) {
                "conflict"
            } else {
                "failed"
            };
            metrics::HANDOFFS
                .with_label_values(&[ds.as_str(), outcome])
                .inc();
            Err(format!("publishing segments and offsets: {e}"))
        }
    }
}

/// Keeps serving published parts until a historical serves them (or the hand-off timeout
/// passes; 0 waits forever), then drops them.
fn hand_off(
    ctx: Arc<StreamContext>,
    parts: Vec<Part>,
    ids: Vec<eddy_types::SegmentId>,
    timeout_ms: u64,
) {
    if parts.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let timeout = if timeout_ms == 0 {
            Duration::from_secs(u64::MAX / 4)
        } else {
            Duration::from_millis(timeout_ms)
        };
        let served = tokio::select! {
            s = ctx.availability.wait_served(&ids, timeout) => s,
            () = ctx.shutdown.wait() => false,
        };
        if !served {
            tracing::warn!(
                segments = ids.len(),
                "no historical served the published segments in time; dropping the realtime copies anyway"
            );
        }
        discard(&ctx.node, &parts);
    });
}
