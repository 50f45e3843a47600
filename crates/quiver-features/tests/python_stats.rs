//! `exact::mean` / `exact::pstdev` against CPython's `statistics` module on
//! 3,000 committed windows (scripts/gen_stats_fixture.py).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use quiver_features::exact;

/// Each fixture line as (line number, window, Python's mean, Python's pstdev).
fn cases() -> Vec<(usize, Vec<f64>, f64, f64)> {
    include_str!("fixtures/python_stats.txt")
        .lines()
        .enumerate()
        .map(|(line_no, line)| {
            let mut parts = line.split('|');
            let window = parts
                .next()
                .unwrap()
                .split(',')
                .map(|x| x.parse().unwrap())
                .collect();
            let mean = parts.next().unwrap().parse().unwrap();
            let pstdev = parts.next().unwrap().parse().unwrap();
            (line_no + 1, window, mean, pstdev)
        })
        .collect()
}

#[test]
fn mean_and_pstdev_equal_python_bit_for_bit() {
    let cases = cases();
    assert_eq!(cases.len(), 3000);
    for (line, window, mean, pstdev) in &cases {
        assert_eq!(exact::mean(window), *mean, "line {line}: mean");
        assert_eq!(exact::pstdev(window), *pstdev, "line {line}: pstdev");
    }
}

#[test]
fn combined_entry_point_equals_python_bit_for_bit() {
    for (line, window, mean, pstdev) in cases() {
        assert_eq!(
            exact::mean_and_pstdev(&window),
            (mean, pstdev),
            "line {line}"
        );
    }
}
