//! eddy-historical
