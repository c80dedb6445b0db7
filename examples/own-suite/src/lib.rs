//! Nothing here: this crate exists for its `tests/my_infra.rs`, which checks
//! the design in `infra/` with stackproof.
