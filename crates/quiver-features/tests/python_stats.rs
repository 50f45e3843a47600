//! `exact::mean` / `exact::pstdev` against CPython's `statistics` module on
//! 3,000 committed windows (scripts/gen_stats_fixture.py).

use quiver_features::exact;

#[test]
fn mean_and_pstdev_equal_python_bit_for_bit() {
    let text = include_str!("fixtures/python_stats.txt");
    let mut checked = 0;
    for (line_no, line) in text.lines().enumerate() {
        let mut parts = line.split('|');
        let window: Vec<f64> = parts
            .next()
            .unwrap()
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect();
        let mean: f64 = parts.next().unwrap().parse().unwrap();
        let pstdev: f64 = parts.next().unwrap().parse().unwrap();
        assert_eq!(exact::mean(&window), mean, "line {}: mean", line_no + 1);
        assert_eq!(
            exact::pstdev(&window),
            pstdev,
            "line {}: pstdev",
            line_no + 1
        );
        checked += 1;
    }
    assert_eq!(checked, 3000);
}

#[test]
fn combined_entry_point_equals_python_bit_for_bit() {
    for line in include_str!("fixtures/python_stats.txt").lines() {
        let mut parts = line.split('|');
        let window: Vec<f64> = parts
            .next()
            .unwrap()
            .split(',')
            .map(|x| x.parse().unwrap())
            .collect();
        let mean: f64 = parts.next().unwrap().parse().unwrap();
        let pstdev: f64 = parts.next().unwrap().parse().unwrap();
        assert_eq!(exact::mean_and_pstdev(&window), (mean, pstdev), "{line}");
    }
}
