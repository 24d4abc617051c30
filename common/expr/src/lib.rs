//! eddy-expr
