//! eddy-rpc
