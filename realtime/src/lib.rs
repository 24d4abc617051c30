//! eddy-realtime
