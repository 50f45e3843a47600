//! Benchmark harnesses behind `quiver bench` and `quiver bench-redis`. They
//! measure and report; they assert nothing (tests do that).

pub mod engine;
pub mod redis;
