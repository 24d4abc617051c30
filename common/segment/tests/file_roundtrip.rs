//! Whole-file properties: what is written reads back identically through `SegmentReader`, and a
//! damaged or truncated file never opens (no panic, no wrong answer).

// Test code: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use roaring::RoaringBitmap;
use serde_json::{Value, json};

use eddy_segment::hll::Hll;
use eddy_segment::writer::{ColumnData, SegmentData, write_vec};
use eddy_segment::{
    ColumnRole, ColumnSchema, ColumnType, SegmentFile, SegmentReader, SegmentSchema, dump,
};
use eddy_types::{DataSourceName, Granularity, Interval, SegmentId};

fn seg_id() -> SegmentId {
    SegmentId {
        datasource: DataSourceName::new("ds").unwrap(),
        interval: Interval::parse("2020-01-01/2020-01-02").unwrap(),
        version: "v".into(),
        partition: 3,
    }
}

#[derive(Debug, Clone)]
struct Input {
    time: Vec<i64>,
    single: Vec<Option<String>>,
    multi: Vec<Vec<String>>,
    longs: Vec<Option<i64>>,
    indexed: Vec<Option<i64>>,
    doubles: Vec<Option<f64>>,
    floats: Vec<f32>,
    sketch_values: Vec<u8>,
}

fn input_strategy() -> impl Strategy<Value = Input> {
    (1usize..9000).prop_flat_map(|n| {
        (
            proptest::collection::vec(0i64..100_000, n),
            proptest::collection::vec(proptest::option::of("[a-e]{0,3}"), n),
            proptest::collection::vec(proptest::collection::vec("[x-z]{1,2}", 0..3), n),
            proptest::collection::vec(proptest::option::of(any::<i64>()), n),
            proptest::collection::vec(proptest::option::of(-50i64..50), n),
            proptest::collection::vec(proptest::option::of(-1e6f64..1e6), n),
            proptest::collection::vec(-100f32..100.0, n),
            proptest::collection::vec(any::<u8>(), n),
        )
            .prop_map(
                |(mut time, single, multi, longs, indexed, doubles, floats, sketch_values)| {
                    time.sort();
                    Input {
                        time,
                        single,
                        multi,
                        longs,
                        indexed,
                        doubles,
                        floats,
                        sketch_values,
                    }
                },
            )
    })
}

fn dict_of<'a>(values: impl Iterator<Item = &'a String>) -> Vec<String> {
    values
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn build(input: &Input) -> SegmentData {
    let single_dict = dict_of(input.single.iter().flatten());
    let single_ids = input
        .single
        .iter()
        .map(|v| {
            v.as_ref()
                .map_or(0, |s| single_dict.binary_search(s).unwrap() as u32 + 1)
        })
        .collect();
    let multi_dict = dict_of(input.multi.iter().flatten());
    let mut offsets = vec![0u32];
    let mut multi_ids = Vec::new();
    for row in &input.multi {
        if row.is_empty() {
            multi_ids.push(0);
        }
        for v in row {
            multi_ids.push(multi_dict.binary_search(v).unwrap() as u32 + 1);
        }
        offsets.push(multi_ids.len() as u32);
    }
    let nulls_of = |flags: Vec<bool>| {
        flags
            .iter()
            .enumerate()
            .filter(|(_, f)| **f)
            .map(|(i, _)| i as u32)
            .collect::<RoaringBitmap>()
    };
    let col = |name: &str, kind, role, multi_value, has_bitmap| ColumnSchema {
        name: name.into(),
        kind,
        role,
        multi_value,
        has_bitmap,
    };
    SegmentData {
        id: seg_id(),
        schema: SegmentSchema {
            columns: vec![
                col("s", ColumnType::String, ColumnRole::Dimension, false, true),
                col("m", ColumnType::String, ColumnRole::Dimension, true, true),
                col("l", ColumnType::Long, ColumnRole::Dimension, false, false),
                col("li", ColumnType::Long, ColumnRole::Dimension, false, true),
                // Indexed and mostly distinct: also stored in row order.
                col("lh", ColumnType::Long, ColumnRole::Dimension, false, true),
                col("d", ColumnType::Double, ColumnRole::Metric, false, false),
                col("f", ColumnType::Float, ColumnRole::Metric, false, false),
                col(
                    "h",
                    ColumnType::HyperUnique,
                    ColumnRole::Metric,
                    false,
                    false,
                ),
            ],
            aggregators: vec![],
            query_granularity: Granularity::None,
            rollup: false,
            sort_order: vec!["__time".into()],
        },
        time_sorted: true,
        time: input.time.clone(),
        columns: vec![
            ColumnData::String {
                dict: single_dict,
                ids: single_ids,
            },
            ColumnData::MultiString {
                dict: multi_dict,
                offsets,
                ids: multi_ids,
            },
            ColumnData::Long {
                values: input.longs.iter().map(|v| v.unwrap_or(0)).collect(),
                nulls: nulls_of(input.longs.iter().map(Option::is_none).collect()),
            },
            ColumnData::Long {
                values: input.indexed.iter().map(|v| v.unwrap_or(0)).collect(),
                nulls: nulls_of(input.indexed.iter().map(Option::is_none).collect()),
            },
            ColumnData::Long {
                values: input.longs.iter().map(|v| v.unwrap_or(0)).collect(),
                nulls: nulls_of(input.longs.iter().map(Option::is_none).collect()),
            },
            ColumnData::Double {
                values: input.doubles.iter().map(|v| v.unwrap_or(0.0)).collect(),
                nulls: nulls_of(input.doubles.iter().map(Option::is_none).collect()),
            },
            ColumnData::Float {
                values: input.floats.clone(),
                nulls: RoaringBitmap::new(),
            },
            ColumnData::Sketch {
                sketches: input
                    .sketch_values
                    .iter()
                    .map(|v| {
                        let mut h = Hll::new();
                        h.add_str(&(v % 7).to_string());
                        h.add_str(&(v % 3).to_string());
                        h
                    })
                    .collect(),
            },
        ],
    }
}

fn expected_rows(input: &Input) -> Vec<serde_json::Map<String, Value>> {
    (0..input.time.len())
        .map(|i| {
            let multi = match input.multi[i].len() {
                0 => Value::Null,
                1 => json!(input.multi[i][0]),
                _ => json!(input.multi[i]),
            };
            let sketch = [input.sketch_values[i] % 7, input.sketch_values[i] % 3]
                .iter()
                .map(|v| v.to_string())
                .collect::<BTreeSet<_>>()
                .len();
            json!({
                "__time": input.time[i],
                "s": input.single[i],
                "m": multi,
                "l": input.longs[i],
                "li": input.indexed[i],
                "lh": input.longs[i],
                "d": input.doubles[i],
                "f": f64::from(input.floats[i]),
                "h": sketch as f64,
            })
            .as_object()
            .unwrap()
            .clone()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// String columns written without bitmap indexes find the same rows by scanning ids.
    #[test]
    fn unindexed_strings_find_the_rows_bitmaps_find(input in input_strategy(), picks in proptest::collection::vec(0u32..40, 0..6)) {
        let indexed = build(&input);
        let mut plain = indexed.clone();
        for c in plain.schema.columns.iter_mut().filter(|c| c.kind == ColumnType::String) {
            c.has_bitmap = false;
        }
        let with = SegmentFile::from_bytes(write_vec(&indexed).unwrap().into(), "with").unwrap();
        let without = SegmentFile::from_bytes(write_vec(&plain).unwrap().into(), "without").unwrap();
        prop_assert_eq!(dump::rows(&with).unwrap(), dump::rows(&without).unwrap());
        for name in ["s", "m"] {
            let (eddy_segment::ColumnRef::String(a), eddy_segment::ColumnRef::String(b)) =
                (with.column(name).unwrap(), without.column(name).unwrap()) else { panic!("{name} is a string column") };
            prop_assert!(a.has_bitmaps() && !b.has_bitmaps());
            for id in 0..a.cardinality() {
                prop_assert_eq!(a.bitmap(id).unwrap().into_owned(), b.bitmap(id).unwrap().into_owned(), "{} id {}", name, id);
            }
            let ids: Vec<u32> = picks.iter().map(|p| p % a.cardinality()).collect();
            prop_assert_eq!(a.rows_with_ids(&ids).unwrap(), b.rows_with_ids(&ids).unwrap(), "{} ids {:?}", name, ids);
        }
    }

    #[test]
    fn write_then_read_is_identity(input in input_strategy()) {
        let bytes = write_vec(&build(&input)).unwrap();
        let file = SegmentFile::from_bytes(bytes.into(), "mem").unwrap();
        prop_assert_eq!(file.num_rows(), input.time.len());
        prop_assert_eq!(file.segment_id(), &seg_id());
        let rows = dump::rows(&file).unwrap();
        let want = expected_rows(&input);
        for (i, (got, want)) in rows.iter().zip(&want).enumerate() {
            prop_assert_eq!(got, want, "row {}", i);
        }
        // Bitmaps agree with ids: every row is in exactly the bitmap of its value.
        let eddy_segment::ColumnRef::String(s) = file.column("s").unwrap() else { panic!("s is a string column") };
        let mut total = 0;
        for id in 0..s.cardinality() {
            let bm = s.bitmap(id).unwrap();
            total += bm.len();
            let value = s.value(id).unwrap().map(|v| v.into_owned());
            for r in bm.iter() {
                prop_assert_eq!(&input.single[r as usize], &value);
            }
        }
        prop_assert_eq!(total as usize, input.time.len());
        // The mostly-distinct indexed column reads the same through row order and through ids.
        let eddy_segment::ColumnRef::Numeric(lh) = file.column("lh").unwrap() else { panic!("lh is numeric") };
        let index = lh.index().unwrap();
        let mut block = vec![0i64; eddy_segment::BLOCK_ROWS];
        for b in 0..input.time.len().div_ceil(eddy_segment::BLOCK_ROWS) {
            lh.read_i64(b, &mut block).unwrap();
            let start = b * eddy_segment::BLOCK_ROWS;
            for (k, v) in input.longs[start..(start + eddy_segment::BLOCK_ROWS).min(input.time.len())].iter().enumerate() {
                let by_id = index.value(index.row_id((start + k) as u32).unwrap());
                prop_assert_eq!(by_id, *v);
                if let Some(v) = v {
                    prop_assert_eq!(block[k], *v);
                }
            }
        }
        // Block ranges cover block values.
        let eddy_segment::ColumnRef::Numeric(li) = file.column("li").unwrap() else { panic!("li is numeric") };
        for b in 0..input.time.len().div_ceil(eddy_segment::BLOCK_ROWS) {
            let start = b * eddy_segment::BLOCK_ROWS;
            let vals: Vec<i64> = input.indexed[start..(start + eddy_segment::BLOCK_ROWS).min(input.time.len())].iter().flatten().copied().collect();
            let want = vals.iter().min().zip(vals.iter().max()).map(|(a, b)| (*a, *b));
            prop_assert_eq!(li.block_range_i64(b), want);
        }
    }
}

fn sample_bytes() -> Vec<u8> {
    let input = Input {
        time: (0..5000).collect(),
        single: (0..5000).map(|i| Some(format!("v{}", i % 50))).collect(),
        multi: (0..5000)
            .map(|i| vec![format!("a{}", i % 3), format!("b{}", i % 5)])
            .collect(),
        longs: (0..5000).map(|i| Some(i * 3)).collect(),
        indexed: (0..5000)
            .map(|i| if i % 10 == 0 { None } else { Some(i % 40) })
            .collect(),
        doubles: (0..5000).map(|i| Some(i as f64 / 3.0)).collect(),
        floats: (0..5000).map(|i| i as f32).collect(),
        sketch_values: (0..5000).map(|i| i as u8).collect(),
    };
    write_vec(&build(&input)).unwrap()
}

#[test]
fn every_truncation_fails_to_open() {
    let bytes = sample_bytes();
    for cut in (0..bytes.len()).step_by(97).chain([bytes.len() - 1]) {
        let r = SegmentFile::from_bytes(bytes[..cut].to_vec().into(), "cut");
        assert!(
            r.is_err(),
            "opened a file truncated to {cut} of {} bytes",
            bytes.len()
        );
    }
}

#[test]
fn every_flipped_byte_fails_to_open_and_names_a_part() {
    let bytes = sample_bytes();
    for pos in (0..bytes.len()).step_by(61) {
        let mut damaged = bytes.clone();
        damaged[pos] ^= 0x5a;
        match SegmentFile::from_bytes(damaged.into(), "flip") {
            Ok(_) => panic!("opened a file with byte {pos} flipped"),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("corrupt in") || msg.contains("version"),
                    "{msg}"
                );
            }
        }
    }
}

#[test]
fn damage_in_a_column_names_the_column() {
    let bytes = sample_bytes();
    let file = SegmentFile::from_bytes(bytes.clone().into(), "x").unwrap();
    let part = file.footer().part("c0.dict").unwrap().clone();
    let mut damaged = bytes;
    damaged[part.offset as usize + 20] ^= 1;
    let err = SegmentFile::from_bytes(damaged.into(), "x")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("ds_2020-01-01") && err.contains("column \"s\" (dict)"),
        "{err}"
    );
}
