//! Key parts of a group: where each part's per-row ids come from (dictionary ids, long index
//! ids, segment-local ids for other numbers and for virtual columns' values), and turning the
//! ids of kept groups into values.

use hashbrown::HashMap;

use eddy_segment::{BLOCK_ROWS, ColumnRef, LongIndex, NumericColumn, SegmentReader, StringColumn};
use eddy_types::TIME_COLUMN;

use eddy_expr::{ExprValue, TimePart};

use super::super::aggs::{Block, Rows};
use crate::error::QueryError;
use crate::model::virtuals::{VirtualColumn, VirtualType};
use crate::partial::KeyValue;

/// Where a key part comes from.
pub(super) enum KeySource<'a> {
    Null,
    Strings {
        col: &'a dyn StringColumn,
        multi: bool,
    },
    Indexed(&'a dyn LongIndex),
    /// Numbers given segment-local ids (0 = null), or grouped by their values themselves
    /// when `by_value` (then only the block's values and nulls are loaded).
    Numbers {
        col: &'a dyn NumericColumn,
        is_long: bool,
        local: HashMap<u64, u32>,
        values: Vec<Option<u64>>,
        by_value: bool,
    },
    /// A virtual column's values, computed per row and given segment-local ids (0 = null).
    Virtual(Box<VirtualKey<'a>>),
}

/// A column a virtual column reads, with the current block's values.
enum Input<'a> {
    Missing,
    Number {
        col: &'a dyn NumericColumn,
        is_long: bool,
        longs: Vec<i64>,
        doubles: Vec<f64>,
    },
    Strings {
        col: &'a dyn StringColumn,
        offsets: Vec<u32>,
        ids: Vec<u32>,
    },
}

pub(super) struct VirtualKey<'a> {
    column: &'a VirtualColumn,
    inputs: Vec<(String, Input<'a>)>,
    /// The current row's input values, in `inputs` order.
    bound: Vec<ExprValue>,
    local: HashMap<KeyValue, u32>,
    values: Vec<KeyValue>,
    /// Local id by dictionary id (u32::MAX = not computed yet), when the expression reads one
    /// string column only; empty otherwise.
    memo: Vec<u32>,
    /// Whether the memo is to be filled for every value before the first block: when at least
    /// as many rows are read as the column has values, nearly all are met anyway, and reading
    /// the dictionary front to back beats reading it row by row at random.
    fill: bool,
    /// The expression as a field of its one long input, computed without the interpreter, with
    /// the local id of each small value (u32::MAX = not met yet).
    time: Option<(TimePart, Vec<u32>)>,
}

impl<'a> VirtualKey<'a> {
    fn open(segment: &'a dyn SegmentReader, column: &'a VirtualColumn) -> Self {
        let inputs: Vec<(String, Input<'a>)> = column
            .expr
            .identifiers()
            .into_iter()
            .map(|name| {
                let number = |col: &'a dyn NumericColumn| Input::Number {
                    col,
                    is_long: col.kind() == eddy_segment::codec::numeric::NumKind::Long,
                    longs: vec![0; BLOCK_ROWS],
                    doubles: vec![0.0; BLOCK_ROWS],
                };
                let input = if name == TIME_COLUMN {
                    number(segment.time())
                } else {
                    match segment.column(&name) {
                        Some(ColumnRef::Numeric(col)) => number(col),
                        Some(ColumnRef::String(col)) => Input::Strings {
                            col,
                            offsets: Vec::new(),
                            ids: Vec::new(),
                        },
                        None | Some(ColumnRef::Sketch(_)) => Input::Missing,
                    }
                };
                (name, input)
            })
            .collect();
        let memo = match &inputs[..] {
            [(_, Input::Strings { col, .. })] => vec![u32::MAX; col.cardinality() as usize],
            _ => Vec::new(),
        };
        // `timestamp_extract(__time, 'MINUTE')` as a LONG: the interpreter's value, quicker.
        let time = column
            .expr
            .time_part()
            .filter(|_| column.output == VirtualType::Long)
            .filter(|_| matches!(&inputs[..], [(_, Input::Number { is_long: true, .. })]))
            .map(|t| {
                let small = vec![u32::MAX; t.unit.limit().unwrap_or(0) as usize];
                (t, small)
            });
        VirtualKey {
            memo,
            fill: false,
            time,
            column,
            bound: Vec::with_capacity(inputs.len()),
            inputs,
            local: HashMap::new(),
            values: vec![KeyValue::Null],
        }
    }

    /// The value `input` holds for row `i` of the block (`start` its first row).
    fn bind(input: &Input<'_>, i: usize, start: usize) -> Result<ExprValue, QueryError> {
        Ok(match input {
            Input::Missing => ExprValue::Null,
            Input::Number {
                col,
                is_long,
                longs,
                doubles,
            } => {
                if col.nulls().is_some_and(|n| n.contains((start + i) as u32)) {
                    ExprValue::Null
                } else if *is_long {
                    ExprValue::Long(longs[i])
                } else {
                    ExprValue::Double(doubles[i])
                }
            }
            Input::Strings { col, offsets, ids } => {
                let row = &ids[offsets[i] as usize..offsets[i + 1] as usize];
                let text = |id: u32| -> Result<ExprValue, QueryError> {
                    Ok(col
                        .value(id)?
                        .map_or(ExprValue::Null, |v| ExprValue::Str(v.into_owned())))
                };
                match row {
                    [] => ExprValue::Null,
                    [id] => text(*id)?,
                    many => {
                        ExprValue::Array(many.iter().map(|id| text(*id)).collect::<Result<_, _>>()?)
                    }
                }
            }
        })
    }

    /// Ids of the selected rows' values (other rows of `out` are left as they were).
    fn load(&mut self, b: &Block, rows: Rows<'_>, out: &mut [u32]) -> Result<(), QueryError> {
        for (_, input) in &mut self.inputs {
            match input {
                Input::Missing => {}
                Input::Number {
                    col,
                    is_long: true,
                    longs,
                    ..
                } => col.read_i64(b.index, longs)?,
                Input::Number { col, doubles, .. } => col.read_f64(b.index, doubles)?,
                Input::Strings { col, offsets, ids } => {
                    col.read_multi_ids(b.index, offsets, ids)?
                }
            }
        }
        if self.time.is_some() {
            return self.load_time_part(b, rows, out);
        }
        // Numeric inputs with nulls would need a lookup per row: no reuse then.
        let reuse = !self
            .inputs
            .iter()
            .any(|(_, input)| matches!(input, Input::Number { col, .. } if col.nulls().is_some()));
        let mut prev: Option<usize> = None;
        for k in 0..rows.len() {
            let i = rows.get(k);
            out[i] = match self.memo_slot(i) {
                Some(slot) if self.memo[slot] != u32::MAX => self.memo[slot],
                Some(slot) => {
                    let id = self.row_id(i, b.start)?;
                    self.memo[slot] = id;
                    id
                }
                // Rows are in time order, so neighbours often read the same inputs (the same
                // second of a timestamp): then the value is the previous row's.
                None => match prev {
                    Some(p) if reuse && self.same_inputs(i, p) => out[p],
                    _ => self.row_id(i, b.start)?,
                },
            };
            prev = Some(i);
        }
        Ok(())
    }

    /// [`VirtualKey::load`] of a time part: its input's values are loaded.
    fn load_time_part(
        &mut self,
        b: &Block,
        rows: Rows<'_>,
        out: &mut [u32],
    ) -> Result<(), QueryError> {
        let (Some((part, small)), [(_, Input::Number { col, longs, .. })]) =
            (&mut self.time, &self.inputs[..])
        else {
            return Err(QueryError::Internal("a time part without its input".into()));
        };
        let nulls = col.nulls();
        for k in 0..rows.len() {
            let i = rows.get(k);
            if nulls.is_some_and(|n| n.contains((b.start + i) as u32)) {
                out[i] = 0;
                continue;
            }
            let v = part.unit.of(longs[i], &part.tz);
            out[i] = match small.get_mut(v as usize) {
                Some(id) if *id != u32::MAX => *id,
                Some(id) => {
                    *id = intern(&mut self.local, &mut self.values, KeyValue::Long(v));
                    *id
                }
                None => intern(&mut self.local, &mut self.values, KeyValue::Long(v)),
            };
        }
        Ok(())
    }

    /// How many local ids there can be (with the null's), when the values are few by nature.
    fn bound(&self) -> Option<u64> {
        let (part, _) = self.time.as_ref()?;
        part.unit.limit().map(|l| u64::from(l) + 1)
    }

    /// Whether rows `i` and `j` of the block give the expression the same inputs, numeric
    /// inputs having no nulls.
    fn same_inputs(&self, i: usize, j: usize) -> bool {
        self.inputs.iter().all(|(_, input)| match input {
            Input::Missing => true,
            Input::Number {
                is_long: true,
                longs,
                ..
            } => longs[i] == longs[j],
            Input::Number { doubles, .. } => doubles[i].to_bits() == doubles[j].to_bits(),
            Input::Strings { offsets, ids, .. } => {
                let row = |r: usize| &ids[offsets[r] as usize..offsets[r + 1] as usize];
                row(i) == row(j)
            }
        })
    }

    /// Where row `i`'s id is remembered: when the expression reads one string column and
    /// nothing else, its value depends only on the row's dictionary id, so it is computed once
    /// per id (a regular expression over a URL column runs per distinct URL, not per row).
    fn memo_slot(&self, i: usize) -> Option<usize> {
        match &self.inputs[..] {
            [(_, Input::Strings { offsets, ids, .. })] if !self.memo.is_empty() => {
                match &ids[offsets[i] as usize..offsets[i + 1] as usize] {
                    // Ids past the memo belong to values added after it was sized (a
                    // growing in-memory index).
                    [id] if (*id as usize) < self.memo.len() => Some(*id as usize),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Evaluates the expression on row `i` of the block (`start` its first row): the
    /// segment-local id of its value.
    fn row_id(&mut self, i: usize, start: usize) -> Result<u32, QueryError> {
        self.bound.clear();
        for (_, input) in &self.inputs {
            self.bound.push(Self::bind(input, i, start)?);
        }
        let (inputs, bound) = (&self.inputs, &self.bound);
        let row = |name: &str| {
            inputs
                .iter()
                .position(|(n, _)| n == name)
                .map_or(ExprValue::Null, |p| bound[p].clone())
        };
        let value = self.column.value(&row)?;
        Ok(local_id(&mut self.local, &mut self.values, value))
    }

    /// Computes the memo for every non-null value of the one string input, in dictionary order.
    /// A value whose evaluation fails is left to its first row, which reports the error only if
    /// a selected row holds it.
    fn fill_memo(&mut self) -> Result<(), QueryError> {
        self.fill = false;
        let [(name, Input::Strings { col, .. })] = &self.inputs[..] else {
            return Ok(());
        };
        let (column, local, values, memo) = (
            self.column,
            &mut self.local,
            &mut self.values,
            &mut self.memo,
        );
        col.for_each_value(&mut |id, text| {
            let Some(slot) = memo.get_mut(id as usize) else {
                return;
            };
            let row = |n: &str| {
                if n == name {
                    ExprValue::Str(text.to_string())
                } else {
                    ExprValue::Null
                }
            };
            if let Ok(v) = column.value(&row) {
                *slot = local_id(local, values, v);
            }
        })?;
        Ok(())
    }
}

/// The segment-local id of an expression's value (0 for a null).
fn local_id(local: &mut HashMap<KeyValue, u32>, values: &mut Vec<KeyValue>, v: ExprValue) -> u32 {
    let key = match v {
        ExprValue::Long(v) => KeyValue::Long(v),
        ExprValue::Double(v) => KeyValue::double(v),
        ExprValue::Str(v) => KeyValue::Str(v),
        _ => return 0,
    };
    intern(local, values, key)
}

/// The segment-local id of a virtual column's value, a new one when it is new.
fn intern(local: &mut HashMap<KeyValue, u32>, values: &mut Vec<KeyValue>, key: KeyValue) -> u32 {
    let next = values.len() as u32;
    match local.get(&key) {
        Some(id) => *id,
        None => {
            values.push(key.clone());
            local.insert(key, next);
            next
        }
    }
}

impl KeySource<'_> {
    /// Sizes a segment-local id table for `rows` rows (at most 2^20 ids), so that a
    /// many-valued number column never rehashes; a table of few values leaves the rest untouched.
    pub(super) fn expect_rows(&mut self, rows: u64) {
        match self {
            KeySource::Numbers {
                local,
                by_value: false,
                ..
            } => local.reserve(rows.min(1 << 20) as usize),
            KeySource::Virtual(v) => v.fill = !v.memo.is_empty() && rows >= v.memo.len() as u64,
            _ => {}
        }
    }

    /// Groups a number part by its values: `Some(is_long)` for a number part, which then
    /// loads only values and nulls; `None` for other parts, which keep their ids.
    pub(super) fn group_by_value(&mut self) -> Option<bool> {
        match self {
            KeySource::Numbers {
                is_long, by_value, ..
            } => {
                *by_value = true;
                Some(*is_long)
            }
            _ => None,
        }
    }

    /// Whether this is a number part whose column has nulls in the segment.
    pub(super) fn nullable_number(&self) -> bool {
        matches!(self, KeySource::Numbers { col, .. } if col.nulls().is_some())
    }

    /// Number of distinct ids, when known up front.
    pub(super) fn cardinality(&self) -> Option<u64> {
        match self {
            KeySource::Null => Some(1),
            KeySource::Strings { col, .. } => Some(u64::from(col.cardinality())),
            KeySource::Indexed(i) => Some(u64::from(i.cardinality())),
            KeySource::Virtual(v) => v.bound(),
            KeySource::Numbers { .. } => None,
        }
    }
}

pub(super) fn open_key<'a>(
    segment: &'a dyn SegmentReader,
    name: &str,
    virtuals: &'a [VirtualColumn],
) -> KeySource<'a> {
    if let Some(v) = virtuals.iter().find(|v| v.name == name) {
        return KeySource::Virtual(Box::new(VirtualKey::open(segment, v)));
    }
    if name == TIME_COLUMN {
        return KeySource::Numbers {
            col: segment.time(),
            is_long: true,
            local: HashMap::new(),
            values: vec![None],
            by_value: false,
        };
    }
    match segment.column(name) {
        None | Some(ColumnRef::Sketch(_)) => KeySource::Null,
        Some(ColumnRef::String(col)) => KeySource::Strings {
            col,
            multi: col.is_multi_value(),
        },
        Some(ColumnRef::Numeric(col)) => match col.index() {
            Some(index) => KeySource::Indexed(index),
            None => KeySource::Numbers {
                col,
                is_long: col.kind() == eddy_segment::codec::numeric::NumKind::Long,
                local: HashMap::new(),
                values: vec![None],
                by_value: false,
            },
        },
    }
}

/// Per-block ids of one key part: one id per row, or per-row lists for multi-value columns.
pub(super) struct PartIds {
    pub(super) ids: Vec<u32>,
    pub(super) offsets: Vec<u32>,
    pub(super) multi: bool,
    pub(super) longs: Vec<i64>,
    pub(super) doubles: Vec<f64>,
    pub(super) nulls: Vec<bool>,
}

impl PartIds {
    pub(super) fn new() -> Self {
        PartIds {
            ids: vec![0; BLOCK_ROWS],
            offsets: Vec::new(),
            multi: false,
            longs: vec![0; BLOCK_ROWS],
            doubles: vec![0.0; BLOCK_ROWS],
            nulls: vec![false; BLOCK_ROWS],
        }
    }

    /// The ids of the block's rows; numbers and virtual columns get ids only for the selected
    /// `rows` (so a selective filter does not fill the segment-local table with other rows).
    pub(super) fn load(
        &mut self,
        src: &mut KeySource<'_>,
        b: &Block,
        rows: Rows<'_>,
    ) -> Result<(), QueryError> {
        self.multi = false;
        match src {
            KeySource::Null => self.ids[..b.len].fill(0),
            KeySource::Strings { col, multi: false } => col.read_ids(b.index, &mut self.ids)?,
            KeySource::Strings { col, multi: true } => {
                self.multi = true;
                col.read_multi_ids(b.index, &mut self.offsets, &mut self.ids)?;
            }
            KeySource::Indexed(index) => index.read_ids(b.index, &mut self.ids)?,
            KeySource::Virtual(v) => {
                if v.fill {
                    v.fill_memo()?;
                }
                v.load(b, rows, &mut self.ids)?
            }
            KeySource::Numbers {
                col,
                is_long,
                local,
                values,
                by_value,
            } => {
                if *is_long {
                    col.read_i64(b.index, &mut self.longs)?;
                } else {
                    col.read_f64(b.index, &mut self.doubles)?;
                }
                self.nulls[..b.len].fill(false);
                if let Some(nb) = col.nulls() {
                    for r in nb.range(b.start as u32..(b.start + b.len) as u32) {
                        self.nulls[r as usize - b.start] = true;
                    }
                }
                if *by_value {
                    return Ok(());
                }
                for k in 0..rows.len() {
                    let i = rows.get(k);
                    if self.nulls[i] {
                        self.ids[i] = 0;
                        continue;
                    }
                    let bits = if *is_long {
                        self.longs[i] as u64
                    } else {
                        self.doubles[i].to_bits()
                    };
                    let next = values.len() as u32;
                    let id = *local.entry(bits).or_insert_with(|| {
                        values.push(Some(bits));
                        next
                    });
                    self.ids[i] = id;
                }
            }
        }
        Ok(())
    }

    pub(super) fn values_of(&self, row: usize) -> &[u32] {
        if self.multi {
            let (s, e) = (self.offsets[row] as usize, self.offsets[row + 1] as usize);
            if s == e { &[0] } else { &self.ids[s..e] }
        } else {
            std::slice::from_ref(&self.ids[row])
        }
    }
}

/// Values of the given ids of a key part, aligned with `ids`.
pub(super) fn resolve(src: &KeySource<'_>, ids: &[u32]) -> Result<Vec<KeyValue>, QueryError> {
    Ok(match src {
        KeySource::Null => vec![KeyValue::Null; ids.len()],
        KeySource::Strings { col, .. } => col
            .values(ids)?
            .into_iter()
            .map(|v| v.map_or(KeyValue::Null, KeyValue::Str))
            .collect(),
        KeySource::Indexed(index) => ids
            .iter()
            .map(|id| index.value(*id).map_or(KeyValue::Null, KeyValue::Long))
            .collect(),
        KeySource::Virtual(v) => ids
            .iter()
            .map(|id| {
                v.values
                    .get(*id as usize)
                    .cloned()
                    .unwrap_or(KeyValue::Null)
            })
            .collect(),
        KeySource::Numbers {
            is_long, values, ..
        } => ids
            .iter()
            .map(|id| match values.get(*id as usize).copied().flatten() {
                None => KeyValue::Null,
                Some(bits) if *is_long => KeyValue::Long(bits as i64),
                Some(bits) => KeyValue::Double(bits),
            })
            .collect(),
    })
}
