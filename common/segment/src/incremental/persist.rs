//! Turns an incremental index into segment data: dictionaries sorted, ids remapped, rows sorted
//! by the schema's sort order (`__time` first unless the spec says otherwise; ties keep arrival
//! order).

use std::cmp::Ordering;

use roaring::RoaringBitmap;

use eddy_types::{SegmentId, TIME_COLUMN};

use crate::codec::numeric::NumKind;
use crate::writer::{ColumnData, SegmentData};

use super::columns::{MemNumeric, MemStringDim};
use super::{IncrementalIndex, MemDim, MemMetric};

struct SortedDim {
    dict: Vec<String>,
    /// old id → new id
    remap: Vec<u32>,
}

fn sort_dictionary(d: &MemStringDim) -> SortedDim {
    let order = d.sorted_order();
    let mut remap = vec![0u32; d.num_ids()];
    let mut dict = Vec::with_capacity(order.len());
    for (k, old) in order.iter().enumerate() {
        remap[*old as usize] = k as u32 + 1;
        dict.push(d.value_of(*old).unwrap_or_default().to_string());
    }
    SortedDim { dict, remap }
}

fn cmp_numeric(n: &MemNumeric, a: usize, b: usize) -> Ordering {
    match (n.is_null(a), n.is_null(b)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => match n.kind {
            NumKind::Long => n.longs[a].cmp(&n.longs[b]),
            _ => n.doubles[a].total_cmp(&n.doubles[b]),
        },
    }
}

fn permute_numeric(n: &MemNumeric, perm: &[u32]) -> ColumnData {
    let mut nulls = RoaringBitmap::new();
    for (new, old) in perm.iter().enumerate() {
        if n.is_null(*old as usize) {
            nulls.insert(new as u32);
        }
    }
    match n.kind {
        NumKind::Long => ColumnData::Long {
            values: perm.iter().map(|r| n.longs[*r as usize]).collect(),
            nulls,
        },
        NumKind::Float => ColumnData::Float {
            values: perm.iter().map(|r| n.doubles[*r as usize] as f32).collect(),
            nulls,
        },
        NumKind::Double => ColumnData::Double {
            values: perm.iter().map(|r| n.doubles[*r as usize]).collect(),
            nulls,
        },
    }
}

/// Sorted, remapped columns ready for [`crate::writer::write_file`].
pub fn persist(index: &IncrementalIndex, id: SegmentId) -> SegmentData {
    let rows = index.num_rows();
    let sorted: Vec<Option<SortedDim>> = index
        .dims
        .iter()
        .map(|d| match d {
            MemDim::String(s) => Some(sort_dictionary(s)),
            MemDim::Numeric(_) => None,
        })
        .collect();
    let mut perm: Vec<u32> = (0..rows as u32).collect();
    let time = &index.time.longs;
    let keys: Vec<Option<usize>> = index
        .schema
        .sort_order
        .iter()
        .map(|name| {
            if name == TIME_COLUMN {
                None
            } else {
                index.schema.columns.iter().position(|c| &c.name == name)
            }
        })
        .collect();
    perm.sort_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        for key in &keys {
            let ord = match key {
                None => time[a].cmp(&time[b]),
                Some(d) => match (&index.dims[*d], &sorted[*d]) {
                    (MemDim::String(s), Some(sd)) => {
                        let ra = s.row_ids(a).iter().map(|id| sd.remap[*id as usize]);
                        let rb = s.row_ids(b).iter().map(|id| sd.remap[*id as usize]);
                        ra.cmp(rb)
                    }
                    (MemDim::Numeric(n), _) => cmp_numeric(n, a, b),
                    _ => Ordering::Equal,
                },
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });

    let mut schema = index.schema.clone();
    let mut columns = Vec::with_capacity(schema.columns.len());
    for (d, dim) in index.dims.iter().enumerate() {
        match (dim, &sorted[d]) {
            (MemDim::String(s), Some(sd)) => {
                if s.is_multi() {
                    schema.columns[d].multi_value = true;
                    let mut offsets = Vec::with_capacity(rows + 1);
                    let mut ids = Vec::new();
                    offsets.push(0u32);
                    for r in &perm {
                        ids.extend(
                            s.row_ids(*r as usize)
                                .iter()
                                .map(|id| sd.remap[*id as usize]),
                        );
                        offsets.push(ids.len() as u32);
                    }
                    columns.push(ColumnData::MultiString {
                        dict: sd.dict.clone(),
                        offsets,
                        ids,
                    });
                } else {
                    let (flat, _) = s.ids_flat();
                    let ids = perm
                        .iter()
                        .map(|r| sd.remap[flat[*r as usize] as usize])
                        .collect();
                    columns.push(ColumnData::String {
                        dict: sd.dict.clone(),
                        ids,
                    });
                }
            }
            (MemDim::Numeric(n), _) => columns.push(permute_numeric(n, &perm)),
            (MemDim::String(_), None) => {
                unreachable!("every string dimension has a sorted dictionary")
            }
        }
    }
    for m in &index.metrics {
        match m {
            MemMetric::Numeric { col, .. } => columns.push(permute_numeric(col, &perm)),
            MemMetric::Sketch { col, .. } => columns.push(ColumnData::Sketch {
                sketches: perm
                    .iter()
                    .map(|r| {
                        let mut s = col.sketches[*r as usize].clone();
                        s.normalize();
                        s
                    })
                    .collect(),
            }),
        }
    }
    let time: Vec<i64> = perm.iter().map(|r| time[*r as usize]).collect();
    let time_sorted = time.windows(2).all(|w| w[0] <= w[1]);
    SegmentData {
        id,
        schema,
        time_sorted,
        time,
        columns,
    }
}
