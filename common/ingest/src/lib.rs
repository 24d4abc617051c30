//! eddy-ingest
