use std::sync::Arc;

use crunch_engine::analysis::Analysis;
use datafusion::arrow::array::{Float64Array, Int32Array};

use crate::common::{Fixture, batch, close, f64s, strings};

#[tokio::test]
async fn correlation_is_one_for_linear_minus_one_for_inverse_and_zero_for_unrelated() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![
            ("x", Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5]))),
            // y = 2x + 1
            (
                "y",
                Arc::new(Float64Array::from(vec![3.0, 5.0, 7.0, 9.0, 11.0])),
            ),
            // z = 10 - x
            ("z", Arc::new(Int32Array::from(vec![9, 8, 7, 6, 5]))),
            // Deviations from the means (x: 3, w: 0.2) give a covariance of
            // -1.6 + 1.2 + 0 - 1.2 + 1.6 = 0.
            (
                "w",
                Arc::new(Float64Array::from(vec![1.0, -1.0, 1.0, -1.0, 1.0])),
            ),
        ])],
    );
    let out = fixture
        .ok(Analysis::Correlation {
            table: "t".into(),
            columns: vec!["x".into(), "y".into(), "z".into(), "w".into()],
            filters: vec![],
        })
        .await;

    assert_eq!(out.num_rows(), 16);
    let a = strings(&out, "column_a");
    let b = strings(&out, "column_b");
    let r = f64s(&out, "correlation");
    let get = |x: &str, y: &str| {
        let i = (0..16)
            .find(|&i| a[i].as_deref() == Some(x) && b[i].as_deref() == Some(y))
            .unwrap();
        r[i]
    };
    close(get("x", "x"), 1.0);
    close(get("x", "y"), 1.0);
    close(get("y", "x"), 1.0);
    close(get("x", "z"), -1.0);
    close(get("y", "z"), -1.0);
    close(get("x", "w"), 0.0);
}
