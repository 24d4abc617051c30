//! eddy-storage
