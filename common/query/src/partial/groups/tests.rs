use super::*;

fn row(bucket: i64, key: &[KeyValue], aggs: Vec<AggValue>) -> GroupRow {
    GroupRow {
        bucket,
        key: key.to_vec(),
        aggs,
    }
}

#[test]
fn rows_round_trip_and_strings_are_pooled_once() {
    let rows = vec![
        row(
            0,
            &[KeyValue::Str("a".into()), KeyValue::Null],
            vec![AggValue::Long(Some(2)), AggValue::Text(Some("x".into()))],
        ),
        row(
            5,
            &[KeyValue::Str("a".into()), KeyValue::double(1.5)],
            vec![AggValue::Long(None), AggValue::Text(None)],
        ),
        row(
            5,
            &[KeyValue::Str("".into()), KeyValue::Long(-3)],
            vec![AggValue::Long(Some(7)), AggValue::NoValue],
        ),
    ];
    let set = GroupSet::from_rows(rows.clone());
    assert_eq!(set.strings.len(), 2);
    assert_eq!(set.key(0)[0], set.key(1)[0]);
    assert_eq!(set.row(1), rows[1]);
    assert_eq!(
        set.select(&[2, 0]).into_rows(),
        vec![rows[2].clone(), rows[0].clone()]
    );
    assert_eq!(set.into_rows(), rows);
}

#[test]
fn appending_into_reserved_room_keeps_it() {
    let part = |b: i64| {
        GroupSet::from_rows(vec![row(
            b,
            &[KeyValue::Str(format!("k{b}"))],
            vec![AggValue::Long(Some(b))],
        )])
    };
    // Room reserved for all parts: the first part is copied in, not taken whole (which
    // would drop the room and make every later part grow the arrays again).
    let mut all = GroupSet::with_capacity(1, 1, 1000);
    for b in 0..3 {
        all.append(part(b));
    }
    assert!(all.buckets.capacity() >= 1000);
    assert_eq!(all.len(), 3);
    assert_eq!(
        all.row(2),
        row(
            2,
            &[KeyValue::Str("k2".into())],
            vec![AggValue::Long(Some(2))]
        )
    );
    // No room reserved: the first part is taken as it is.
    let mut taken = GroupSet::new(1, 1);
    taken.append(part(7));
    assert_eq!(taken.into_rows(), part(7).into_rows());
}

#[test]
fn folding_combines_equal_keys_across_pools() {
    let kinds = [AggKind::Count, AggKind::StringMax];
    let a = GroupSet::from_rows(vec![
        row(
            0,
            &[KeyValue::Str("x".into())],
            vec![AggValue::Long(Some(1)), AggValue::Text(Some("m".into()))],
        ),
        row(
            0,
            &[KeyValue::Str("y".into())],
            vec![AggValue::Long(Some(2)), AggValue::Text(None)],
        ),
    ]);
    // The same strings under other ids in the second pool.
    let b = GroupSet::from_rows(vec![
        row(
            0,
            &[KeyValue::Str("z".into())],
            vec![AggValue::Long(Some(4)), AggValue::Text(Some("a".into()))],
        ),
        row(
            0,
            &[KeyValue::Str("y".into())],
            vec![AggValue::Long(Some(8)), AggValue::Text(Some("q".into()))],
        ),
        row(
            1,
            &[KeyValue::Str("x".into())],
            vec![AggValue::Long(Some(16)), AggValue::Text(None)],
        ),
    ]);
    let mut set = GroupSet::default();
    let mut index = GroupIndex::new();
    index.fold(&kinds, &mut set, a);
    index.fold(&kinds, &mut set, b);
    let rows = set.into_rows();
    let text = |s: &str| AggValue::Text(Some(s.into()));
    assert_eq!(
        rows,
        vec![
            row(
                0,
                &[KeyValue::Str("x".into())],
                vec![AggValue::Long(Some(1)), text("m")]
            ),
            row(
                0,
                &[KeyValue::Str("y".into())],
                vec![AggValue::Long(Some(10)), text("q")]
            ),
            row(
                0,
                &[KeyValue::Str("z".into())],
                vec![AggValue::Long(Some(4)), text("a")]
            ),
            row(
                1,
                &[KeyValue::Str("x".into())],
                vec![AggValue::Long(Some(16)), AggValue::Text(None)]
            ),
        ]
    );
}

#[test]
fn masking_folds_groups_that_become_equal() {
    let kinds = [AggKind::LongSum];
    let set = GroupSet::from_rows(vec![
        row(
            0,
            &[KeyValue::Long(1), KeyValue::Str("a".into())],
            vec![AggValue::Long(Some(1))],
        ),
        row(
            0,
            &[KeyValue::Long(2), KeyValue::Str("a".into())],
            vec![AggValue::Long(Some(2))],
        ),
        row(
            0,
            &[KeyValue::Long(2), KeyValue::Str("b".into())],
            vec![AggValue::Long(None)],
        ),
    ]);
    let rows = set.masked(&[false, true], &kinds).into_rows();
    assert_eq!(
        rows,
        vec![
            row(
                0,
                &[KeyValue::Null, KeyValue::Str("a".into())],
                vec![AggValue::Long(Some(3))]
            ),
            row(
                0,
                &[KeyValue::Null, KeyValue::Str("b".into())],
                vec![AggValue::Long(None)]
            ),
        ]
    );
}
