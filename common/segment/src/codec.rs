//! Column codecs: each encodes a whole column part and opens it again for reading with every
//! offset and length checked, so damaged bytes surface as errors rather than panics.

pub mod bitmaps;
pub mod dictionary;
pub mod ids;
pub mod numeric;
pub mod sketches;
