//! eddy-coordinator
