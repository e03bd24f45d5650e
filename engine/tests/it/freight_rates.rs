//! The freight-rates question, answered with one SQL query: the average
//! price per day between an origin and a destination, each a port code or
//! a region slug (regions nest to any depth), null on days with fewer than
//! three prices.

use std::sync::Arc;

use datafusion::arrow::array::{Date32Array, Int32Array, StringArray};

use crate::common::{Fixture, batch, close, f64s, i64s, sql};

/// The README's query (`examples/freight_rates.sql`), asked for another
/// origin and destination (each a port code or a region slug). Each side
/// becomes a set of ports: the port with that code, plus every port of the
/// region with that slug or of any region below it, found by a recursive
/// walk down `regions.parent_slug`. `UNION` (not `UNION ALL`) makes the
/// walk stop even if the regions had a cycle.
fn query(origin: &str, destination: &str) -> String {
    include_str!("../../../examples/freight_rates.sql")
        .replace("'china_main'", &format!("'{origin}'"))
        .replace("'north_europe_main'", &format!("'{destination}'"))
}

/// 2024-01-01 as days since the epoch.
const JAN_1: i32 = 19_723;

fn freight() -> Fixture {
    let mut fixture = Fixture::new();
    let strings = |v: Vec<Option<&str>>| Arc::new(StringArray::from(v));
    fixture.table(
        "regions",
        &[batch(vec![
            (
                "slug",
                strings(vec![
                    Some("europe"),
                    Some("north_europe"),
                    Some("benelux"),
                    Some("asia"),
                    Some("china"),
                    Some("south_china"),
                ]),
            ),
            (
                "name",
                strings(vec![
                    Some("Europe"),
                    Some("Northern Europe"),
                    Some("Benelux"),
                    Some("Asia"),
                    Some("China"),
                    Some("South China"),
                ]),
            ),
            (
                "parent_slug",
                strings(vec![
                    None,
                    Some("europe"),
                    Some("north_europe"),
                    None,
                    Some("asia"),
                    Some("china"),
                ]),
            ),
        ])],
    );
    fixture.table(
        "ports",
        &[batch(vec![
            (
                "code",
                strings(vec![
                    Some("NLRTM"),
                    Some("BEANR"),
                    Some("DEHAM"),
                    Some("ESBCN"),
                    Some("CNSHA"),
                    Some("CNYTN"),
                    Some("JPTYO"),
                ]),
            ),
            (
                "name",
                strings(vec![
                    Some("Rotterdam"),
                    Some("Antwerp"),
                    Some("Hamburg"),
                    Some("Barcelona"),
                    Some("Shanghai"),
                    Some("Yantian"),
                    Some("Tokyo"),
                ]),
            ),
            // Rotterdam and Antwerp two levels below northern Europe,
            // Yantian two below China.
            (
                "parent_slug",
                strings(vec![
                    Some("benelux"),
                    Some("benelux"),
                    Some("north_europe"),
                    Some("europe"),
                    Some("china"),
                    Some("south_china"),
                    Some("asia"),
                ]),
            ),
        ])],
    );
    let prices: [(&str, &str, i32, i32); 13] = [
        ("NLRTM", "CNSHA", 0, 100),
        ("BEANR", "CNYTN", 0, 200),
        ("DEHAM", "CNSHA", 0, 300),
        ("ESBCN", "CNSHA", 0, 1000),
        ("NLRTM", "JPTYO", 0, 5000),
        ("NLRTM", "CNSHA", 1, 100),
        ("DEHAM", "CNYTN", 1, 150),
        ("ESBCN", "CNSHA", 1, 10),
        ("ESBCN", "CNSHA", 1, 10),
        ("NLRTM", "CNYTN", 2, 120),
        ("BEANR", "CNSHA", 2, 130),
        ("BEANR", "CNSHA", 2, 140),
        ("DEHAM", "CNSHA", 2, 150),
    ];
    fixture.table(
        "prices",
        &[batch(vec![
            (
                "orig_code",
                Arc::new(StringArray::from_iter_values(prices.iter().map(|p| p.0))),
            ),
            (
                "dest_code",
                Arc::new(StringArray::from_iter_values(prices.iter().map(|p| p.1))),
            ),
            (
                "day",
                Arc::new(Date32Array::from_iter_values(
                    prices.iter().map(|p| JAN_1 + p.2),
                )),
            ),
            (
                "price",
                Arc::new(Int32Array::from_iter_values(prices.iter().map(|p| p.3))),
            ),
        ])],
    );
    fixture
}

fn days(out: &datafusion::arrow::array::RecordBatch) -> Vec<Option<i64>> {
    i64s(out, "day")
}

#[tokio::test]
async fn region_to_region_averages_over_every_port_in_nested_subregions() {
    let out = freight().ok(sql(&query("north_europe", "china"))).await;
    // North Europe = Rotterdam, Antwerp (via Benelux), Hamburg; China =
    // Shanghai, Yantian (via South China). Barcelona and Tokyo are out.
    // Jan 1: 100, 200, 300 -> 200. Jan 2: 100, 150 -> too few.
    // Jan 3: 120, 130, 140, 150 -> 135.
    assert_eq!(days(&out), vec![Some(19_723), Some(19_724), Some(19_725)]);
    let average = f64s(&out, "average_price");
    close(average[0], 200.0);
    assert_eq!(average[1], None);
    close(average[2], 135.0);
}

#[tokio::test]
async fn a_region_to_a_port_code_mixes_both_kinds() {
    let out = freight().ok(sql(&query("europe", "CNSHA"))).await;
    // Europe adds Barcelona. To Shanghai only:
    // Jan 1: 100, 300, 1000 -> 466.67. Jan 2: 100, 10, 10 -> 40.
    // Jan 3: 130, 140, 150 -> 140.
    let average = f64s(&out, "average_price");
    assert_eq!(days(&out).len(), 3);
    close(average[0], 1400.0 / 3.0);
    close(average[1], 40.0);
    close(average[2], 140.0);
}

#[tokio::test]
async fn port_to_port_with_few_prices_is_null_every_day() {
    let out = freight().ok(sql(&query("NLRTM", "CNSHA"))).await;
    assert_eq!(days(&out), vec![Some(19_723), Some(19_724)]);
    assert_eq!(f64s(&out, "average_price"), vec![None, None]);
}
