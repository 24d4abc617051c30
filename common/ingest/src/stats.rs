//! Row counters and saved parse errors, in Druid's report shapes.

use std::collections::VecDeque;

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowStats {
    pub processed: u64,
    pub processed_with_error: u64,
    pub unparseable: u64,
    pub thrown_away: u64,
    pub processed_bytes: u64,
}

impl RowStats {
    pub fn to_json(&self) -> Value {
        json!({
            "processed": self.processed,
            "processedBytes": self.processed_bytes,
            "processedWithError": self.processed_with_error,
            "thrownAway": self.thrown_away,
            "unparseable": self.unparseable,
        })
    }
}

/// Which parse errors to keep: the first ones (batch) or the most recent ones (streaming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    First,
    Last,
}

#[derive(Debug, Clone)]
pub struct ParseErrors {
    keep: Keep,
    max: usize,
    saved: VecDeque<Value>,
}

impl ParseErrors {
    pub fn new(keep: Keep, max: usize) -> Self {
        ParseErrors {
            keep,
            max,
            saved: VecDeque::new(),
        }
    }

    /// Saves an error; `kind` is Druid's errorType (`unparseable` or `processedWithError`).
    pub fn record(&mut self, kind: &str, input: &str, details: &str, now_ms: i64) {
        if self.max == 0 || (self.keep == Keep::First && self.saved.len() >= self.max) {
            return;
        }
        let mut input = input.to_string();
        if input.len() > 1024 {
            let cut = (0..=1024)
                .rev()
                .find(|i| input.is_char_boundary(*i))
                .unwrap_or(0);
            input.truncate(cut);
            input.push('…');
        }
        self.saved.push_back(json!({
            "timeOfExceptionMillis": now_ms,
            "input": input,
            "details": [details],
            "errorType": kind,
        }));
        if self.saved.len() > self.max {
            self.saved.pop_front();
        }
    }

    pub fn to_json(&self) -> Value {
        Value::Array(self.saved.iter().cloned().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.saved.is_empty()
    }
}
