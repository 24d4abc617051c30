//! The versioned timeline: which segments answer for which time. In every stretch of time the
//! newest version among the given segments wins, with all its partitions; older versions show
//! only where nothing newer covers them. Callers pass only segments whose version is complete
//! (every partition available), so a reader never sees half of a new version.

use std::collections::BTreeMap;

use eddy_types::{Interval, SegmentId};

/// A segment and the parts of its interval where it is visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visible {
    pub id: SegmentId,
    pub clips: Vec<Interval>,
}

/// Visible segments for `query` (sorted by interval, version, partition).
pub fn visible(segments: &[&SegmentId], query: &[Interval]) -> Vec<Visible> {
    let relevant: Vec<&SegmentId> = segments
        .iter()
        .copied()
        .filter(|s| query.iter().any(|q| q.overlaps(&s.interval)))
        .collect();
    let mut bounds: Vec<i64> = Vec::with_capacity(relevant.len() * 2 + query.len() * 2);
    for s in &relevant {
        bounds.push(s.interval.start);
        bounds.push(s.interval.end);
    }
    for q in query {
        bounds.push(q.start);
        bounds.push(q.end);
    }
    bounds.sort_unstable();
    bounds.dedup();
    let mut clips: BTreeMap<SegmentId, Vec<Interval>> = BTreeMap::new();
    for w in bounds.windows(2) {
        let piece = Interval {
            start: w[0],
            end: w[1],
        };
        if !query.iter().any(|q| q.encloses(&piece)) {
            continue;
        }
        let covering = relevant.iter().filter(|s| s.interval.encloses(&piece));
        let Some(best) = covering.clone().map(|s| &s.version).max() else {
            continue;
        };
        for s in covering.filter(|s| &s.version == best) {
            let list = clips.entry((*s).clone()).or_default();
            match list.last_mut() {
                Some(last) if last.end == piece.start => last.end = piece.end,
                _ => list.push(piece),
            }
        }
    }
    let mut out: Vec<Visible> = clips
        .into_iter()
        .map(|(id, clips)| Visible { id, clips })
        .collect();
    out.sort_by(|a, b| {
        (a.id.interval, &a.id.version, a.id.partition).cmp(&(
            b.id.interval,
            &b.id.version,
            b.id.partition,
        ))
    });
    out
}

/// Segments not visible anywhere in their own interval: fully overshadowed by newer versions.
pub fn overshadowed(segments: &[&SegmentId]) -> Vec<SegmentId> {
    let everything = [Interval::ETERNITY];
    let seen: std::collections::HashSet<SegmentId> = visible(segments, &everything)
        .into_iter()
        .map(|v| v.id)
        .collect();
    segments
        .iter()
        .filter(|s| !seen.contains(*s))
        .map(|s| (*s).clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_types::DataSourceName;
    use proptest::prelude::*;

    fn seg(start: i64, end: i64, version: &str, partition: u32) -> SegmentId {
        SegmentId {
            datasource: DataSourceName::new("d").unwrap(),
            interval: Interval { start, end },
            version: version.into(),
            partition,
        }
    }

    #[test]
    fn newer_version_overshadows_and_partitions_travel_together() {
        let old = seg(0, 10, "v1", 0);
        let old_p1 = seg(0, 10, "v1", 1);
        let new = seg(0, 10, "v2", 0);
        let new_p1 = seg(0, 10, "v2", 1);
        let all = [&old, &old_p1, &new, &new_p1];
        let v = visible(&all, &[Interval { start: 0, end: 10 }]);
        assert_eq!(
            v.iter().map(|v| v.id.clone()).collect::<Vec<_>>(),
            vec![new.clone(), new_p1.clone()]
        );
        assert_eq!(overshadowed(&all), vec![old, old_p1]);
    }

    #[test]
    fn partial_overlap_clips_the_older_segment() {
        let day = seg(0, 24, "v1", 0);
        let hour = seg(5, 6, "v2", 0);
        let v = visible(&[&day, &hour], &[Interval { start: 0, end: 24 }]);
        assert_eq!(v.len(), 2);
        let day_v = v.iter().find(|x| x.id == day).unwrap();
        assert_eq!(
            day_v.clips,
            vec![
                Interval { start: 0, end: 5 },
                Interval { start: 6, end: 24 }
            ]
        );
        assert!(overshadowed(&[&day, &hour]).is_empty());
    }

    proptest! {
        /// Every instant of the query is answered by exactly the newest version covering it.
        #[test]
        fn each_instant_sees_the_newest_version(specs in proptest::collection::vec((0i64..20, 1i64..8, 0u8..4), 1..12), probe in 0i64..30) {
            let segs: Vec<SegmentId> = specs.iter().enumerate().map(|(i, (s, l, v))| seg(*s, s + l, &format!("v{v}"), i as u32)).collect();
            let refs: Vec<&SegmentId> = segs.iter().collect();
            let query = [Interval { start: 0, end: 30 }];
            let vis = visible(&refs, &query);
            let answering: Vec<&SegmentId> = vis.iter().filter(|v| v.clips.iter().any(|c| c.contains(probe))).map(|v| &v.id).collect();
            let newest = segs.iter().filter(|s| s.interval.contains(probe)).map(|s| s.version.clone()).max();
            match newest {
                None => prop_assert!(answering.is_empty()),
                Some(v) => {
                    let want: Vec<&SegmentId> = segs.iter().filter(|s| s.interval.contains(probe) && s.version == v).collect();
                    prop_assert_eq!(answering.len(), want.len());
                    prop_assert!(answering.iter().all(|a| a.version == v));
                }
            }
        }
    }
}
