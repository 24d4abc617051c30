//! Evaluates a filter on one segment into the bitmap of matching rows.
//!
//! SQL three-valued logic: every leaf yields the rows where it is true and the rows where it is
//! unknown (its column is null); `not` keeps only rows that were false. String columns are
//! filtered on their dictionaries once and then by combining bitmaps; indexed longs by their
//! sorted values; other numeric columns block by block, skipping or taking whole blocks by their
//! min/max.

pub mod leaf;

use roaring::RoaringBitmap;

use eddy_segment::SegmentReader;
use eddy_types::spec::FilterSpec;

use crate::error::QueryError;

pub use leaf::{Leaf, NumPred, StrPred};

/// True rows and unknown (null-driven) rows of a filter; disjoint.
pub struct Tri {
    pub yes: RoaringBitmap,
    pub unknown: RoaringBitmap,
}

/// Rows `0..n`, held as plain bitmap containers: a filter's complement subtracts other rows
/// from it, and roaring removes an array's rows from a run container one at a time, splitting
/// the run each time (a quarter of a `NOT` filter's scan went there), while a bitmap subtracts
/// them word by word.
pub fn all_rows(n: usize) -> RoaringBitmap {
    let mut b = RoaringBitmap::new();
    if n > 0 {
        b.insert_range(0..n as u32);
        b.remove_run_compression();
    }
    b
}

/// Rows of `segment` where `filter` is true.
pub fn evaluate(
    filter: &FilterSpec,
    segment: &dyn SegmentReader,
) -> Result<RoaringBitmap, QueryError> {
    Ok(evaluate_tri(filter, segment)?.yes)
}

pub fn evaluate_tri(filter: &FilterSpec, segment: &dyn SegmentReader) -> Result<Tri, QueryError> {
    let n = segment.num_rows();
    match filter {
        FilterSpec::True => Ok(Tri {
            yes: all_rows(n),
            unknown: RoaringBitmap::new(),
        }),
        FilterSpec::False => Ok(Tri {
            yes: RoaringBitmap::new(),
            unknown: RoaringBitmap::new(),
        }),
        FilterSpec::And { fields } => {
            if fields.is_empty() {
                return Ok(Tri {
                    yes: all_rows(n),
                    unknown: RoaringBitmap::new(),
                });
            }
            let mut parts = Vec::with_capacity(fields.len());
            for f in fields {
                let t = evaluate_tri(f, segment)?;
                // Short-circuit: nothing can be true or unknown any more.
                if t.yes.is_empty() && t.unknown.is_empty() {
                    return Ok(t);
                }
                parts.push(t);
            }
            let mut yes = parts[0].yes.clone();
            let mut maybe = &parts[0].yes | &parts[0].unknown;
            for p in &parts[1..] {
                yes &= &p.yes;
                maybe &= &(&p.yes | &p.unknown);
            }
            let unknown = maybe - &yes;
            Ok(Tri { yes, unknown })
        }
        FilterSpec::Or { fields } => {
            let mut yes = RoaringBitmap::new();
            let mut unknown = RoaringBitmap::new();
            for f in fields {
                let t = evaluate_tri(f, segment)?;
                yes |= t.yes;
                unknown |= t.unknown;
            }
            unknown -= &yes;
            Ok(Tri { yes, unknown })
        }
        FilterSpec::Not { field } => {
            let t = evaluate_tri(field, segment)?;
            let mut no = all_rows(n);
            no -= &t.yes;
            no -= &t.unknown;
            Ok(Tri {
                yes: no,
                unknown: t.unknown,
            })
        }
        FilterSpec::Expression { .. } => Err(QueryError::Unsupported(
            "expression filters are not supported in native queries yet; use SQL".into(),
        )),
        leaf_spec => Leaf::compile(leaf_spec)?.evaluate(segment),
    }
}
