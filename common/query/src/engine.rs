//! Runs a native query on one segment and returns a mergeable partial result. Pure and
//! CPU-bound: the caller picks the thread pool.

pub mod aggs;
pub mod grouping;
pub mod meta;
pub mod scan;
pub mod search;
pub mod select;

use eddy_segment::SegmentReader;
use eddy_types::Interval;
use eddy_types::spec::FilterSpec;

use crate::error::QueryError;
use crate::finalize::{TopNScorer, prune_to_limit};
use crate::model::Query;
use crate::model::virtuals::parse_virtuals;
use crate::partial::{GroupSet, GroupedPartial, Partial};

use grouping::{GroupingPlan, Prune, group_segment};
use select::{ExecContext, select};

pub use select::ExecContext as Context;

/// Executes `query` on `segment`, reading only rows inside `clips` (the parts of the segment
/// the timeline shows; empty means the whole segment).
pub fn execute(
    query: &Query,
    segment: &dyn SegmentReader,
    clips: &[Interval],
    ctx: &ExecContext<'_>,
) -> Result<Partial, QueryError> {
    ctx.check()?;
    let chunk = segment.segment_id().interval;
    let visible: &[Interval] = if clips.is_empty() {
        std::slice::from_ref(&chunk)
    } else {
        clips
    };
    let intervals: Vec<Interval> = query
        .intervals()
        .iter()
        .flat_map(|q| visible.iter().filter_map(move |c| q.intersect(c)))
        .collect();
    let covered = intervals.clone();
    let grouped = |filter: Option<&FilterSpec>, plan: GroupingPlan<'_>| {
        let selection = select(segment, &intervals, filter)?;
        let groups = if selection.is_empty() {
            GroupSet::default()
        } else {
            group_segment(&plan, segment, &selection, ctx)?
        };
        Ok(Partial::Grouped(GroupedPartial {
            groups,
            covered: covered.clone(),
        }))
    };
    match query {
        Query::Timeseries(q) => grouped(
            q.filter.as_ref(),
            GroupingPlan {
                granularity: q.granularity,
                dims: &[],
                virtuals: &[],
                aggs: &q.aggregations,
                prune: None,
            },
        ),
        Query::TopN(q) => {
            let virtuals = parse_virtuals(&q.virtual_columns)?;
            let scorer = TopNScorer::new(q);
            let score = |a: &[crate::partial::AggValue]| scorer.score(a);
            let prune = q.metric.ranks_by_value().then(|| Prune {
                keep: q.threshold.max(q.context.min_top_n_threshold()),
                score: &score,
                reads: scorer.reads(),
            });
            grouped(
                q.filter.as_ref(),
                GroupingPlan {
                    granularity: q.granularity,
                    dims: std::slice::from_ref(&q.dimension),
                    virtuals: &virtuals,
                    aggs: &q.aggregations,
                    prune,
                },
            )
        }
        Query::GroupBy(q) => {
            let virtuals = parse_virtuals(&q.virtual_columns)?;
            let part = grouped(
                q.filter.as_ref(),
                GroupingPlan {
                    granularity: q.granularity,
                    dims: &q.dimensions,
                    virtuals: &virtuals,
                    aggs: &q.aggregations,
                    prune: None,
                },
            )?;
            Ok(match part {
                Partial::Grouped(mut g) => {
                    g.groups = prune_to_limit(q, g.groups);
                    Partial::Grouped(g)
                }
                other => other,
            })
        }
        Query::Scan(q) => {
            let selection = select(segment, &intervals, q.filter.as_ref())?;
            Ok(Partial::Scan(scan::scan_segment(
                q, segment, &selection, ctx,
            )?))
        }
        Query::Search(q) => {
            let selection = select(segment, &intervals, q.filter.as_ref())?;
            Ok(Partial::Search(search::search_segment(
                q, segment, &selection, ctx,
            )?))
        }
        Query::TimeBoundary(q) => {
            let selection = select(segment, &intervals, q.filter.as_ref())?;
            let (min, max) = meta::time_boundary(segment, &selection, ctx)?;
            Ok(Partial::TimeBoundary { min, max })
        }
        Query::SegmentMetadata(q) => Ok(Partial::SegmentMetadata(vec![meta::segment_metadata(
            q, segment,
        )])),
        Query::DataSourceMetadata(_) => Ok(Partial::DataSourceMetadata {
            max_time: segment.time_range().map(|(_, hi)| hi),
        }),
    }
}
