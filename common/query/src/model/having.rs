//! groupBy `having` specs, applied to finalized rows after merging.

use serde::Deserialize;
use serde_json::Value;

use eddy_types::spec::FilterSpec;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum HavingSpec {
    GreaterThan {
        aggregation: String,
        value: Value,
    },
    LessThan {
        aggregation: String,
        value: Value,
    },
    EqualTo {
        aggregation: String,
        value: Value,
    },
    And {
        having_specs: Vec<HavingSpec>,
    },
    Or {
        having_specs: Vec<HavingSpec>,
    },
    Not {
        having_spec: Box<HavingSpec>,
    },
    DimSelector {
        dimension: String,
        #[serde(default)]
        value: Option<Value>,
    },
    Filter {
        filter: FilterSpec,
    },
    Always,
    Never,
}
