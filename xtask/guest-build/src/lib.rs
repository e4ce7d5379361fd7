//! Guest component builds (to be written).
