//! Unit tests of the geo commands: the cases of Redis's geo.tcl, replies captured from Redis
//! 7.0.15 (exact digits, tie orders of both sorts, odd scores), and a fuzz test against a
//! brute-force distance check.

use bytes::Bytes;
use shardis_resp::Reply;

use super::*;
use crate::testing::{arr, bulk, bulks, err, int, xorshift, TestShard};

fn nyc() -> TestShard {
    let mut t = TestShard::new();
    t.run(&["geoadd", "nyc", "-73.9454966", "40.747533", "lic market"]);
    t.run(&[
        "geoadd",
        "nyc",
        "-73.9733487",
        "40.7648057",
        "central park n/q/r",
        "-73.9903085",
        "40.7362513",
        "union square",
        "-74.0131604",
        "40.7126674",
        "wtc one",
        "-73.7858139",
        "40.6428986",
        "jfk",
        "-73.9375699",
        "40.7498929",
        "q4",
        "-73.9564142",
        "40.7480973",
        "4545",
    ]);
    t
}

fn pos(lon: &str, lat: &str) -> Reply {
    bulks(&[lon, lat])
}

/// The members of an array reply, joined by spaces.
fn names(reply: Reply) -> String {
    let Reply::Array(items) = reply else {
        panic!("not an array: {reply:?}")
    };
    items
        .into_iter()
        .map(|i| match i {
            Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn geoadd_options() {
    let mut t = TestShard::new();
    assert_eq!(
        t.run(&["geoadd", "nyc", "-73.9454966", "40.747533", "lic market"]),
        int(1)
    );
    assert_eq!(
        t.run(&["geoadd", "nyc", "-73.9454966", "40.747533", "lic market"]),
        int(0)
    );
    assert_eq!(
        t.run(&[
            "geoadd",
            "nyc",
            "CH",
            "40.747533",
            "-73.9454966",
            "lic market"
        ]),
        int(1)
    );
    assert_eq!(
        t.run(&[
            "geoadd",
            "nyc",
            "NX",
            "-73.9454966",
            "40.747533",
            "lic market"
        ]),
        int(0)
    );
    assert_eq!(
        t.run(&["geopos", "nyc", "lic market"]),
        arr(vec![pos("40.7475319504737854", "-73.94549769039056741")])
    );
    assert_eq!(
        t.run(&[
            "geoadd",
            "nyc",
            "XX",
            "-83.9454966",
            "40.747533",
            "lic market"
        ]),
        int(0)
    );
    assert_eq!(
        t.run(&[
            "geoadd",
            "nyc",
            "CH",
            "NX",
            "-73.9454966",
            "40.747533",
            "lic market"
        ]),
        int(0)
    );
    assert_eq!(
        t.run(&[
            "geoadd",
            "nyc",
            "CH",
            "XX",
            "-73.9454966",
            "40.747533",
            "lic market"
        ]),
        int(1)
    );
    for bad in [
        &[
            "geoadd",
            "nyc",
            "xx",
            "nx",
            "-73.9454966",
            "40.747533",
            "lic market",
        ][..],
        &[
            "geoadd",
            "nyc",
            "ch",
            "xx",
            "foo",
            "-73.9454966",
            "40.747533",
            "lic market",
        ],
        &["geoadd", "nyc", "gt", "1", "2", "x"],
        &["geoadd", "nyc", "ch", "ch", "ch"],
    ] {
        assert_eq!(t.run(bad), err("ERR syntax error"));
    }
    assert_eq!(
        t.run(&[
            "geoadd",
            "nyc",
            "-73.9454966",
            "40.747533",
            "lic market",
            "foo",
            "bar",
            "luck market"
        ]),
        err("ERR value is not a valid float")
    );
    assert_eq!(
        t.run(&["geoadd", "g", "200", "100", "x"]),
        err("ERR invalid longitude,latitude pair 200.000000,100.000000")
    );
    assert_eq!(
        t.run(&["geoadd", "g", "inf", "0", "x"]),
        err("ERR invalid longitude,latitude pair inf,0.000000")
    );
    assert_eq!(
        t.run(&["geoadd", "g", " 1", "0", "x"]),
        err("ERR value is not a valid float")
    );
    // The coordinates are checked before the type of the key.
    t.run(&["set", "str", "x"]);
    assert_eq!(
        t.run(&["geoadd", "str", "200", "0", "x"]),
        err("ERR invalid longitude,latitude pair 200.000000,0.000000")
    );
    assert_eq!(
        t.run(&["geoadd", "str", "1", "0", "x"]),
        err(error::WRONGTYPE)
    );
}

#[test]
fn scores_are_redis_geohashes() {
    let mut t = nyc();
    assert_eq!(
        t.run(&["zrange", "nyc", "0", "-1", "withscores"]),
        arr([
            ("wtc one", 1791873972053020u64),
            ("union square", 1791875485187452),
            ("central park n/q/r", 1791875761332224),
            ("4545", 1791875796750882),
            ("lic market", 1791875804419201),
            ("q4", 1791875830079666),
            ("jfk", 1791895905559723),
        ]
        .iter()
        .flat_map(|&(m, s)| [bulk(m), Reply::Double(s as f64)])
        .collect())
    );
    // The edges of the ranges, as Redis computes them (180 sets a bit above the 52).
    t.run(&[
        "geoadd",
        "e",
        "180",
        "0",
        "e180",
        "-180",
        "0",
        "w180",
        "0",
        "85.05112878",
        "n",
    ]);
    assert_eq!(
        t.run(&["zscore", "e", "e180"]),
        Reply::Double(10133099161583616.0)
    );
    assert_eq!(
        t.run(&["zscore", "e", "w180"]),
        Reply::Double(1125899906842624.0)
    );
    assert_eq!(
        t.run(&["zscore", "e", "n"]),
        Reply::Double(6755399441055744.0)
    );
    assert_eq!(
        t.run(&["geopos", "e", "e180", "n"]),
        arr(vec![
            pos("180", "0.00000126736058093"),
            pos("0.00000268220901489", "85.0511287799999991"),
        ])
    );
    assert_eq!(
        t.run(&["geohash", "e", "e180", "n"]),
        bulks(&["80000000000", "up05b5048p0"])
    );
}

#[test]
fn odd_scores_decode_as_in_redis() {
    let mut t = TestShard::new();
    t.run(&[
        "zadd", "g", "-1", "neg", "1.5", "frac", "inf", "pinf", "-inf", "ninf", "1e19", "big",
        "2e19", "big2", "9.3e18", "big3",
    ]);
    let cases = [
        ("neg", "180", "85.0511287799999991", "bp05b5048p0"),
        (
            "frac",
            "-179.99999731779098511",
            "-85.05112497791824921",
            "00bh0hbj210",
        ),
        (
            "pinf",
            "-179.99999731779098511",
            "-85.05112751263942528",
            "00bh0hbj200",
        ),
        ("ninf", "180", "-85.05112751263942528", "00bh0hbj200"),
        ("big", "180", "85.0511287799999991", "bp05b5048p0"),
        (
            "big2",
            "-179.99999731779098511",
            "-85.05112751263942528",
            "00bh0hbj200",
        ),
        ("big3", "180", "85.0511287799999991", "bp05b5048p0"),
    ];
    for (member, lon, lat, hash) in cases {
        assert_eq!(
            t.run(&["geopos", "g", member]),
            arr(vec![pos(lon, lat)]),
            "{member}"
        );
        assert_eq!(t.run(&["geohash", "g", member]), bulks(&[hash]), "{member}");
    }
}

#[test]
fn georadius_and_geosearch_sorted() {
    let mut t = nyc();
    assert_eq!(
        names(t.run(&[
            "georadius",
            "nyc",
            "-73.9798091",
            "40.7598464",
            "3",
            "km",
            "asc"
        ])),
        "central park n/q/r 4545 union square"
    );
    assert_eq!(
        names(t.run(&[
            "geosearch",
            "nyc",
            "fromlonlat",
            "-73.9798091",
            "40.7598464",
            "bybox",
            "6",
            "6",
            "km",
            "asc"
        ])),
        "central park n/q/r 4545 union square lic market"
    );
    assert_eq!(
        t.run(&[
            "georadius",
            "nyc",
            "-73.9798091",
            "40.7598464",
            "3",
            "km",
            "withdist",
            "asc"
        ]),
        arr(vec![
            bulks(&["central park n/q/r", "0.7750"]),
            bulks(&["4545", "2.3651"]),
            bulks(&["union square", "2.7697"]),
        ])
    );
    assert_eq!(
        t.run(&[
            "geosearch",
            "nyc",
            "fromlonlat",
            "-73.9798091",
            "40.7598464",
            "bybox",
            "6",
            "6",
            "km",
            "withdist",
            "asc"
        ]),
        arr(vec![
            bulks(&["central park n/q/r", "0.7750"]),
            bulks(&["4545", "2.3651"]),
            bulks(&["union square", "2.7697"]),
            bulks(&["lic market", "3.1991"]),
        ])
    );
    assert_eq!(
        t.run(&[
            "georadius",
            "nyc",
            "-73.9798091",
            "40.7598464",
            "3",
            "km",
            "withdist",
            "withhash",
            "withcoord",
            "asc"
        ]),
        arr(vec![
            arr(vec![
                bulk("central park n/q/r"),
                bulk("0.7750"),
                int(1791875761332224),
                pos("-73.97334784269332886", "40.76480639569881959"),
            ]),
            arr(vec![
                bulk("4545"),
                bulk("2.3651"),
                int(1791875796750882),
                pos("-73.95641237497329712", "40.74809751381645384"),
            ]),
            arr(vec![
                bulk("union square"),
                bulk("2.7697"),
                int(1791875485187452),
                pos("-73.99031013250350952", "40.73625022711770782"),
            ]),
        ])
    );
    assert_eq!(
        t.run(&[
            "geosearch",
            "nyc",
            "fromlonlat",
            "-73.9798091",
            "40.7598464",
            "bybox",
            "6",
            "6",
            "km",
            "withcoord",
            "desc",
            "count",
            "2"
        ]),
        arr(vec![
            arr(vec![
                bulk("lic market"),
                pos("-73.94549578428268433", "40.74753227099792952")
            ]),
            arr(vec![
                bulk("union square"),
                pos("-73.99031013250350952", "40.73625022711770782")
            ]),
        ])
    );
}

#[test]
fn count_and_any() {
    let mut t = nyc();
    let q = ["georadius", "nyc", "-73.9798091", "40.7598464", "10", "km"];
    let run = |t: &mut TestShard, more: &[&str]| {
        let mut args = q.to_vec();
        args.extend_from_slice(more);
        t.run(&args)
    };
    assert_eq!(
        names(run(&mut t, &["COUNT", "3"])),
        "central park n/q/r 4545 union square"
    );
    assert_eq!(
        names(run(&mut t, &["COUNT", "3", "ANY"])),
        "wtc one union square central park n/q/r"
    );
    assert_eq!(
        run(&mut t, &["COUNT", "3", "ANY", "withdist"]),
        arr(vec![
            bulks(&["wtc one", "5.9530"]),
            bulks(&["union square", "2.7697"]),
            bulks(&["central park n/q/r", "0.7750"]),
        ])
    );
    assert_eq!(
        names(run(&mut t, &["COUNT", "3", "ANY", "ASC"])),
        "central park n/q/r union square wtc one"
    );
    assert_eq!(
        run(&mut t, &["ANY", "ASC"]),
        err("ERR the ANY argument requires COUNT argument")
    );
    assert_eq!(run(&mut t, &["COUNT"]), err("ERR syntax error"));
    assert_eq!(run(&mut t, &["COUNT", "0"]), err("ERR COUNT must be > 0"));
    assert_eq!(
        run(&mut t, &["COUNT", "x"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(names(run(&mut t, &["COUNT", "2", "DESC"])), "wtc one q4");
}

#[test]
fn by_member() {
    let mut t = nyc();
    assert_eq!(
        names(t.run(&["georadiusbymember", "nyc", "wtc one", "7", "km"])),
        "wtc one union square central park n/q/r 4545 lic market"
    );
    assert_eq!(
        t.run(&["georadiusbymember", "nyc", "wtc one", "7", "km", "withdist"]),
        arr(vec![
            bulks(&["wtc one", "0.0000"]),
            bulks(&["union square", "3.2544"]),
            bulks(&["central park n/q/r", "6.7000"]),
            bulks(&["4545", "6.1975"]),
            bulks(&["lic market", "6.8969"]),
        ])
    );
    assert_eq!(
        names(t.run(&[
            "geosearch",
            "nyc",
            "frommember",
            "wtc one",
            "bybox",
            "14",
            "14",
            "km"
        ])),
        "wtc one union square central park n/q/r 4545 lic market q4"
    );
    assert_eq!(
        names(t.run(&[
            "georadiusbymember_ro",
            "nyc",
            "wtc one",
            "7",
            "km",
            "count",
            "1"
        ])),
        "wtc one"
    );
}

#[test]
fn huge_and_polar_searches() {
    let mut t = TestShard::new();
    t.run(&[
        "geoadd",
        "users",
        "-47.271613776683807",
        "-54.534504198047678",
        "user_000000",
    ]);
    let Reply::Array(found) = t.run(&["GEORADIUS", "users", "0", "0", "50000", "km", "WITHCOORD"])
    else {
        panic!()
    };
    assert_eq!(found.len(), 1);

    t.run(&[
        "geoadd",
        "k1",
        "-0.15307903289794921875",
        "85",
        "n1",
        "0.3515625",
        "85.00019260486917005437",
        "n2",
    ]);
    assert_eq!(
        names(t.run(&["georadiusbymember", "k1", "n1", "4891.94", "m"])),
        "n1 n2"
    );
    t.run(&["zrem", "k1", "n1", "n2"]);
    t.run(&[
        "geoadd",
        "k1",
        "-4.95211958885192871094",
        "85",
        "n3",
        "11.25",
        "85.0511",
        "n4",
    ]);
    assert_eq!(
        names(t.run(&["georadiusbymember", "k1", "n3", "156544", "m"])),
        "n3 n4"
    );
    t.run(&["zrem", "k1", "n3", "n4"]);
    t.run(&[
        "geoadd",
        "k1",
        "-45",
        "65.50900022111811438208",
        "n5",
        "90",
        "85.0511",
        "n6",
    ]);
    assert_eq!(
        names(t.run(&["georadiusbymember", "k1", "n5", "5009431", "m"])),
        "n5 n6"
    );

    t.run(&["del", "k1"]);
    t.run(&["geoadd", "k1", "45", "65", "n1", "-135", "85.05", "n2"]);
    assert_eq!(
        names(t.run(&["georadiusbymember", "k1", "n1", "5009431", "m"])),
        "n1 n2"
    );
}

#[test]
fn boxes() {
    let mut t = TestShard::new();
    t.run(&[
        "geoadd",
        "Sicily",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ]);
    t.run(&[
        "geoadd",
        "Sicily",
        "12.758489",
        "38.788135",
        "edge1",
        "17.241510",
        "38.788135",
        "eage2",
    ]);
    assert_eq!(
        names(t.run(&["georadius", "Sicily", "15", "37", "200", "km", "asc"])),
        "Catania Palermo"
    );
    assert_eq!(
        names(t.run(&[
            "geosearch",
            "Sicily",
            "fromlonlat",
            "15",
            "37",
            "bybox",
            "400",
            "400",
            "km",
            "asc"
        ])),
        "Catania Palermo eage2 edge1"
    );

    t.run(&["del", "Sicily"]);
    t.run(&["geoadd", "Sicily", "12.75", "36.995", "test1"]);
    t.run(&["geoadd", "Sicily", "12.75", "36.50", "test2"]);
    t.run(&["geoadd", "Sicily", "13.00", "36.50", "test3"]);
    assert_eq!(
        names(t.run(&[
            "geosearch",
            "Sicily",
            "fromlonlat",
            "15",
            "37",
            "bybox",
            "400",
            "2",
            "km"
        ])),
        "test1"
    );
    t.run(&["geoadd", "Sicily", "-1", "37.00", "test3"]);
    assert_eq!(
        names(t.run(&[
            "geosearch",
            "Sicily",
            "fromlonlat",
            "15",
            "37",
            "bybox",
            "3000",
            "2",
            "km",
            "asc"
        ])),
        "test1 test3"
    );

    t.run(&["del", "Sicily"]);
    t.run(&[
        "geoadd",
        "Sicily",
        "12.758489",
        "38.788135",
        "edge1",
        "17.241510",
        "38.788135",
        "edge2",
        "17.250000",
        "35.202000",
        "edge3",
        "12.750000",
        "35.202000",
        "edge4",
        "12.748489955781654",
        "37",
        "edge5",
        "15",
        "38.798135872540925",
        "edge6",
        "17.251510044218346",
        "37",
        "edge7",
        "15",
        "35.201864127459075",
        "edge8",
        "12.692799634687903",
        "38.798135872540925",
        "corner1",
        "12.692799634687903",
        "38.798135872540925",
        "corner2",
        "17.200560937451133",
        "35.201864127459075",
        "corner3",
        "12.799439062548865",
        "35.201864127459075",
        "corner4",
    ]);
    let mut found: Vec<String> = names(t.run(&[
        "geosearch",
        "Sicily",
        "fromlonlat",
        "15",
        "37",
        "bybox",
        "400",
        "400",
        "km",
        "asc",
    ]))
    .split(' ')
    .map(String::from)
    .collect();
    found.sort();
    assert_eq!(found.join(" "), "edge1 edge2 edge5 edge7");

    t.run(&["del", "points"]);
    t.run(&["geoadd", "points", "179.5", "36", "point1"]);
    t.run(&["geoadd", "points", "-179.5", "36", "point2"]);
    assert_eq!(
        names(t.run(&[
            "geosearch",
            "points",
            "fromlonlat",
            "179",
            "37",
            "bybox",
            "400",
            "400",
            "km",
            "asc"
        ])),
        "point1 point2"
    );
    assert_eq!(
        names(t.run(&[
            "geosearch",
            "points",
            "fromlonlat",
            "-179",
            "37",
            "bybox",
            "400",
            "400",
            "km",
            "asc"
        ])),
        "point2 point1"
    );

    t.run(&["del", "points"]);
    t.run(&["geoadd", "points", "-122.407107", "37.794300", "1"]);
    t.run(&["geoadd", "points", "-122.227336", "37.794300", "2"]);
    assert_eq!(
        t.run(&[
            "GEORADIUS",
            "points",
            "-122.407107",
            "37.794300",
            "30",
            "mi",
            "ASC",
            "WITHDIST"
        ]),
        arr(vec![bulks(&["1", "0.0001"]), bulks(&["2", "9.8182"])])
    );
}

#[test]
fn ties_come_out_in_redis_order() {
    // 60 members on three spots: glibc's merge sort keeps ties in the order found, Redis's
    // partial quicksort (COUNT below the number found) scrambles them its own way.
    let mut t = TestShard::new();
    let spots = [("10.0", "10.0"), ("10.01", "10.0"), ("10.0", "10.02")];
    let members: Vec<String> = (0..60).map(|i| format!("m{i:02}")).collect();
    let mut args = vec!["geoadd", "ties"];
    for (i, m) in members.iter().enumerate() {
        let (lon, lat) = spots[i % 3];
        args.extend([lon, lat, m.as_str()]);
    }
    t.run(&args);
    let q = |t: &mut TestShard, more: &[&str]| {
        let mut args = vec!["georadius", "ties", "10", "10", "100", "km"];
        args.extend_from_slice(more);
        names(t.run(&args))
    };
    let by_spot = |first: usize, order: [usize; 3]| -> String {
        let _ = first;
        order
            .iter()
            .flat_map(|&s| (0..20).map(move |k| format!("m{:02}", k * 3 + s)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(q(&mut t, &["asc"]), by_spot(0, [0, 1, 2]));
    assert_eq!(q(&mut t, &["desc"]), by_spot(0, [2, 1, 0]));
    assert_eq!(q(&mut t, &[]), by_spot(0, [0, 1, 2]));
    assert_eq!(
        q(&mut t, &["asc", "count", "7"]),
        "m57 m06 m09 m12 m15 m18 m21"
    );
    assert_eq!(
        q(&mut t, &["desc", "count", "7"]),
        "m05 m56 m53 m50 m47 m44 m41"
    );
    assert_eq!(
        q(&mut t, &["count", "45"]),
        "m57 m06 m09 m12 m15 m18 m21 m24 m27 m30 m33 m36 m39 m42 m45 m48 m51 m00 m54 m03 \
         m52 m01 m04 m07 m10 m13 m16 m19 m22 m25 m28 m31 m34 m37 m40 m43 m46 m49 m55 m58 \
         m59 m05 m08 m11 m14"
    );
}

#[test]
fn geohash_geopos_geodist() {
    let mut t = nyc();
    assert_eq!(
        t.run(&["geopos", "nyc", "wtc one", "nosuch", "jfk"]),
        arr(vec![
            pos("-74.01316255331039429", "40.71266718145121644"),
            Reply::NilArray,
            pos("-73.78581315279006958", "40.64289898154041936"),
        ])
    );
    assert_eq!(
        t.run(&["geohash", "nyc", "wtc one", "nosuch", "jfk"]),
        arr(vec![bulk("dr5reg922r0"), Reply::Nil, bulk("dr5x0yyf1c0")])
    );
    assert_eq!(
        t.run(&["geopos", "missing", "a"]),
        arr(vec![Reply::NilArray])
    );
    assert_eq!(t.run(&["geohash", "missing", "a"]), arr(vec![Reply::Nil]));
    assert_eq!(
        t.run(&["geodist", "nyc", "wtc one", "jfk", "mi"]),
        bulk("12.8550")
    );
    assert_eq!(
        t.run(&["geodist", "nyc", "wtc one", "jfk", "FT"]),
        bulk("67874.1569")
    );
    assert_eq!(
        t.run(&["geodist", "nyc", "wtc one", "jfk"]),
        bulk("20688.0430")
    );
    assert_eq!(
        t.run(&["geodist", "nyc", "wtc one", "wtc one"]),
        bulk("0.0000")
    );
    assert_eq!(t.run(&["geodist", "nyc", "wtc one", "nosuch"]), Reply::Nil);
    assert_eq!(t.run(&["geodist", "missing", "a", "b"]), Reply::Nil);
    assert_eq!(
        t.run(&["geodist", "nyc", "a", "b", "c", "d"]),
        err("ERR syntax error")
    );
    assert_eq!(t.run(&["geodist", "nyc", "a", "b", "yd"]), err(BAD_UNIT));

    t.run(&["geoadd", "points", "-5.6", "42.6", "test"]);
    assert_eq!(
        t.run(&["geohash", "points", "test"]),
        bulks(&["ezs42e44yx0"])
    );
    t.run(&[
        "geoadd",
        "points",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ]);
    assert_eq!(
        t.run(&["geodist", "points", "Palermo", "Catania"]),
        bulk("166274.1516")
    );
    assert_eq!(
        t.run(&["geodist", "points", "Palermo", "Catania", "km"]),
        bulk("166.2742")
    );
}

#[test]
fn errors_in_redis_order() {
    let mut t = nyc();
    let cases: &[(&[&str], &str)] = &[
        (&["geosearch", "nyc", "frommember", "nosuch", "byradius", "1", "km"], BAD_MEMBER),
        (&["geosearch", "nyc", "fromlonlat", "0", "0", "byradius", "-1", "km"], "ERR radius cannot be negative"),
        (&["geosearch", "nyc", "fromlonlat", "0", "0", "byradius", "x", "km"], "ERR need numeric radius"),
        (&["geosearch", "nyc", "fromlonlat", "0", "0", "bybox", "x", "1", "km"], "ERR need numeric width"),
        (&["geosearch", "nyc", "fromlonlat", "0", "0", "bybox", "1", "x", "km"], "ERR need numeric height"),
        (&["geosearch", "nyc", "fromlonlat", "0", "0", "bybox", "-1", "1", "km"], "ERR height or width cannot be negative"),
        (&["geosearch", "nyc", "fromlonlat", "0", "0", "bybox", "1", "1", "yd"], BAD_UNIT),
        (&["geosearch", "nyc", "fromlonlat", "-73.9798091", "40.7598464", "frommember", "xxx", "bybox", "6", "6", "km", "asc"], "ERR syntax error"),
        (&["GeoSearch", "nyc", "bybox", "3", "3", "km", "asc", "desc", "withhash", "withdist", "withcoord"], "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GeoSearch"),
        (&["geosearch", "nyc", "fromlonlat", "-73.9798091", "40.7598464", "byradius", "3", "km", "bybox", "3", "3", "km", "asc"], "ERR syntax error"),
        (&["geosearch", "nyc", "fromlonlat", "-73.9798091", "40.7598464", "asc", "desc", "withhash", "withdist", "withcoord"], "ERR exactly one of BYRADIUS and BYBOX can be specified for geosearch"),
        (&["geosearch", "nyc", "fromlonlat", "-73.9798091", "40.7598464", "bybox", "6", "6", "km", "asc", "storedist"], "ERR syntax error"),
        (&["geosearch", "nyc", "fromlonlat", "1", "1", "byradius", "1", "km", "store", "x"], "ERR syntax error"),
        (&["geosearchstore", "d", "nyc", "fromlonlat", "0", "0", "byradius", "1", "km", "withdist"], "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"),
        (&["geosearchstore", "abc", "nyc", "fromlonlat", "13.361389", "38.115556", "byradius", "50", "km", "store", "abc"], "ERR syntax error"),
        (&["georadius", "nyc", "0", "0", "1", "km", "store", "d", "withcoord"], "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"),
        (&["georadius", "nyc", "0", "0", "1", "km", "store"], "ERR syntax error"),
        (&["georadius_ro", "nyc", "0", "0", "1", "km", "store", "d"], "ERR syntax error"),
        (&["georadiusbymember_ro", "nyc", "q4", "1", "km", "storedist", "d"], "ERR syntax error"),
        (&["georadius", "nyc", "0", "0", "1", "km", "frommember", "q4"], "ERR syntax error"),
        (&["georadius", "nyc", "200", "0", "1", "km"], "ERR invalid longitude,latitude pair 200.000000,0.000000"),
        (&["georadiusbymember", "nyc", "nosuch", "1", "km"], BAD_MEMBER),
        (&["georadiusbymember", "nyc", "nosuch", "x", "km"], BAD_MEMBER),
        (&["georadiusbymember", "nyc", "q4", "x", "km"], "ERR need numeric radius"),
    ];
    for (args, e) in cases {
        assert_eq!(t.run(args), err(e), "{args:?}");
    }
}

#[test]
fn missing_and_wrong_type_sources() {
    let mut t = TestShard::new();
    t.run(&["set", "src", "wrong_type"]);
    for q in [
        &["georadius", "src", "1", "1", "1", "km"][..],
        &["georadius", "src", "1", "1", "1", "km", "store", "dest"],
        &[
            "geosearch",
            "src",
            "fromlonlat",
            "0",
            "0",
            "byradius",
            "1",
            "km",
        ],
        &[
            "geosearchstore",
            "dest",
            "src",
            "fromlonlat",
            "0",
            "0",
            "byradius",
            "1",
            "km",
        ],
        &["georadiusbymember", "src", "member", "1", "km"],
        &[
            "geosearch",
            "src",
            "frommember",
            "member",
            "bybox",
            "1",
            "1",
            "km",
        ],
        &["geopos", "src", "a"],
        &["geohash", "src", "a"],
        &["geodist", "src", "a", "b"],
    ] {
        assert_eq!(t.run(q), err(error::WRONGTYPE), "{q:?}");
    }
    t.run(&["del", "src"]);
    t.run(&["set", "dest", "x"]);
    let empty = arr(vec![]);
    assert_eq!(t.run(&["georadius", "src", "1", "1", "1", "km"]), empty);
    assert_eq!(
        t.run(&["georadius", "src", "1", "1", "1", "km", "store", "dest"]),
        int(0)
    );
    assert_eq!(t.run(&["exists", "dest"]), int(0));
    assert_eq!(
        t.run(&[
            "geosearch",
            "src",
            "fromlonlat",
            "0",
            "0",
            "byradius",
            "1",
            "km"
        ]),
        empty
    );
    assert_eq!(
        t.run(&["georadiusbymember", "src", "member", "x", "km"]),
        empty
    );
    assert_eq!(
        t.run(&[
            "georadiusbymember",
            "src",
            "member",
            "x",
            "km",
            "store",
            "d"
        ]),
        int(0)
    );
    assert_eq!(
        t.run(&[
            "geosearch",
            "src",
            "frommember",
            "member",
            "bybox",
            "1",
            "1",
            "km"
        ]),
        empty
    );
    assert_eq!(
        t.run(&[
            "geosearchstore",
            "dest",
            "src",
            "frommember",
            "member",
            "bybox",
            "1",
            "1",
            "m"
        ]),
        int(0)
    );
    // An existing key with nothing in range, and a missing member.
    t.run(&[
        "geoadd",
        "src",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ]);
    t.run(&["set", "dest", "x"]);
    assert_eq!(t.run(&["georadius", "src", "1", "1", "1", "km"]), empty);
    assert_eq!(
        t.run(&["georadius", "src", "1", "1", "1", "km", "store", "dest"]),
        int(0)
    );
    assert_eq!(t.run(&["exists", "dest"]), int(0));
    assert_eq!(
        t.run(&[
            "geosearchstore",
            "dest",
            "src",
            "frommember",
            "member",
            "bybox",
            "1",
            "1",
            "m"
        ]),
        err(BAD_MEMBER)
    );
}

#[test]
fn store_and_storedist() {
    let mut t = TestShard::new();
    t.run(&[
        "geoadd",
        "points",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ]);
    assert_eq!(
        t.run(&[
            "georadius",
            "points",
            "13.361389",
            "38.115556",
            "500",
            "km",
            "store",
            "points2"
        ]),
        int(2)
    );
    assert_eq!(
        t.run(&["zrange", "points2", "0", "-1", "withscores"]),
        t.run(&["zrange", "points", "0", "-1", "withscores"])
    );
    assert_eq!(
        t.run(&[
            "georadiusbymember",
            "points",
            "Palermo",
            "500",
            "km",
            "store",
            "points2"
        ]),
        int(2)
    );
    assert_eq!(
        t.run(&[
            "georadiusbymember",
            "points",
            "Catania",
            "500",
            "km",
            "storedist",
            "points2"
        ]),
        int(2)
    );
    assert_eq!(
        t.run(&["zrange", "points2", "0", "-1", "withscores"]),
        arr(vec![
            bulk("Catania"),
            Reply::Double(0.0),
            bulk("Palermo"),
            Reply::Double(166.27415156960032)
        ])
    );
    assert_eq!(
        t.run(&[
            "geosearchstore",
            "points2",
            "points",
            "fromlonlat",
            "13.361389",
            "38.115556",
            "byradius",
            "500",
            "km"
        ]),
        int(2)
    );
    assert_eq!(
        t.run(&["zrange", "points", "0", "-1"]),
        t.run(&["zrange", "points2", "0", "-1"])
    );
    assert_eq!(
        t.run(&[
            "geosearchstore",
            "points2",
            "points",
            "fromlonlat",
            "13.361389",
            "38.115556",
            "byradius",
            "500",
            "km",
            "storedist"
        ]),
        int(2)
    );
    assert_eq!(
        t.run(&["zrange", "points2", "0", "-1", "withscores"]),
        arr(vec![
            bulk("Palermo"),
            Reply::Double(5.305637438600993e-5),
            bulk("Catania"),
            Reply::Double(166.27416107465282)
        ])
    );
    assert_eq!(
        t.run(&[
            "georadius",
            "points",
            "13.361389",
            "38.115556",
            "500",
            "km",
            "storedist",
            "points2",
            "asc",
            "count",
            "1"
        ]),
        int(1)
    );
    assert_eq!(
        t.run(&["zrange", "points2", "0", "-1"]),
        bulks(&["Palermo"])
    );
    assert_eq!(
        t.run(&[
            "georadius",
            "points",
            "13.361389",
            "38.115556",
            "500",
            "km",
            "storedist",
            "points2",
            "desc",
            "count",
            "1"
        ]),
        int(1)
    );
    assert_eq!(
        t.run(&["zrange", "points2", "0", "-1"]),
        bulks(&["Catania"])
    );
    assert_eq!(t.run(&["object", "encoding", "points2"]), bulk("listpack"));
    // The destination loses its TTL, like any overwrite.
    t.run(&["expire", "points2", "100"]);
    t.run(&[
        "georadius",
        "points",
        "13.361389",
        "38.115556",
        "500",
        "km",
        "store",
        "points2",
    ]);
    assert_eq!(t.run(&["ttl", "points2"]), int(-1));
}

#[test]
fn coordinates_in_resp3_are_doubles() {
    let mut t = nyc();
    let args: Vec<Bytes> = ["geopos", "nyc", "wtc one"]
        .iter()
        .map(|s| Bytes::copy_from_slice(s.as_bytes()))
        .collect();
    let reply = geopos(&mut Ctx::new(&mut t.shard, 0, t.now_ms, true), &args);
    assert_eq!(
        reply,
        arr(vec![arr(vec![
            Reply::Double(-74.0131625533104),
            Reply::Double(40.712667181451216)
        ])])
    );
}

#[test]
fn distance_formatting() {
    assert_eq!(format_distance(0.0), "0.0000");
    assert_eq!(format_distance(-0.0), "0.0000");
    assert_eq!(format_distance(0.775), "0.7750");
    assert_eq!(format_distance(0.00004), "0.0000");
    assert_eq!(format_distance(0.00005), "0.0000");
    // 0.00015 × 10000 is 1.4999999999999998.
    assert_eq!(format_distance(0.00015), "0.0001");
    assert_eq!(format_distance(0.00035), "0.0004");
    assert_eq!(format_distance(12345.67891), "12345.6789");
    assert_eq!(format_distance(f64::NAN), "-922337203685477.5808");
}

#[test]
fn sorts_match_their_c_originals() {
    // Both sorts, on random distances with many ties, against straightforward reference
    // orders: the merge sort is stable; the partial sort leaves the first `k` in order.
    let mut next = xorshift(99);
    for round in 0..300 {
        let n = 1 + next(120) as usize;
        let dist: Vec<f64> = (0..n).map(|_| next(10) as f64).collect();
        let cmp = |a: usize, b: usize| cmp_dist(dist[a], dist[b]);
        let mut idx: Vec<usize> = (0..n).collect();
        merge_sort(&mut idx, &cmp);
        let mut stable: Vec<usize> = (0..n).collect();
        stable.sort_by(|&a, &b| dist[a].total_cmp(&dist[b]));
        assert_eq!(idx, stable, "round {round}");
        let k = 1 + next(n as u64) as usize;
        let mut idx: Vec<usize> = (0..n).collect();
        partial_sort(&mut idx, &cmp, 0, k - 1);
        let got: Vec<f64> = idx[..k].iter().map(|&i| dist[i]).collect();
        let want: Vec<f64> = stable[..k].iter().map(|&i| dist[i]).collect();
        assert_eq!(got, want, "round {round}");
        let mut all = idx.clone();
        all.sort();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }
}

/// Redis's fuzz test (geo.tcl): random points and searches against a brute-force distance
/// check; a difference is accepted only where it is a rounding matter at the edge.
#[test]
fn fuzz_against_brute_force() {
    let mut next = xorshift(0x6e0);
    let mut unit = move || next(1 << 53) as f64 / (1u64 << 53) as f64;
    for (round, by_box) in (0..24).map(|r| (r, r % 2 == 1)) {
        let mut t = TestShard::new();
        let big = round % 8 == 0;
        let size = |u: f64| {
            if big {
                (u * 5000.0).floor() + 10.0
            } else {
                (u * 200.0).floor() + 10.0
            }
        };
        let (radius_km, width_km, height_km) = (size(unit()), size(unit()), size(unit()));
        let (search_lon, search_lat) = (-180.0 + unit() * 360.0, -70.0 + unit() * 140.0);
        let mut args: Vec<String> = vec!["geoadd".into(), "mypoints".into()];
        let mut expected = Vec::new();
        let mut points = Vec::new();
        for j in 0..2000 {
            let (lon, lat) = (-180.0 + unit() * 360.0, -70.0 + unit() * 140.0);
            args.extend([lon.to_string(), lat.to_string(), format!("place:{j}")]);
            points.push((lon, lat));
            let inside = if by_box {
                distance(lon, lat, search_lon, lat) <= width_km * 1000.0 / 2.0
                    && distance(lon, lat, lon, search_lat) <= height_km * 1000.0 / 2.0
            } else {
                distance(lon, lat, search_lon, search_lat) < radius_km * 1000.0
            };
            if inside {
                expected.push(format!("place:{j}"));
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        t.run(&args);
        let (lon_s, lat_s) = (search_lon.to_string(), search_lat.to_string());
        let reply = if by_box {
            let (w, h) = (width_km.to_string(), height_km.to_string());
            t.run(&[
                "geosearch",
                "mypoints",
                "fromlonlat",
                &lon_s,
                &lat_s,
                "bybox",
                &w,
                &h,
                "km",
            ])
        } else {
            let r = radius_km.to_string();
            t.run(&[
                "geosearch",
                "mypoints",
                "fromlonlat",
                &lon_s,
                &lat_s,
                "byradius",
                &r,
                "km",
            ])
        };
        let mut got: Vec<String> = names(reply)
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        got.sort();
        expected.sort();
        for place in got
            .iter()
            .filter(|p| !expected.contains(p))
            .chain(expected.iter().filter(|p| !got.contains(p)))
        {
            let j: usize = place["place:".len()..].parse().expect("index");
            let (lon, lat) = points[j];
            let at_edge = if by_box {
                distance(lon, lat, search_lon, lat) <= width_km * 1000.0 * 1.001 / 2.0
                    && distance(lon, lat, lon, search_lat) <= height_km * 1000.0 * 1.001 / 2.0
            } else {
                let d = distance(lon, lat, search_lon, search_lat) / 1000.0;
                d / radius_km > 0.999
            };
            assert!(at_edge, "round {round}: {place} at {lon},{lat} differs");
        }
    }
}

#[test]
fn cells_and_steps() {
    assert_eq!(steps_for_radius(0.0, 0.0), 26);
    assert_eq!(steps_for_radius(f64::INFINITY, 0.0), 1);
    assert_eq!(steps_for_radius(1000.0, 0.0), 14);
    assert_eq!(steps_for_radius(1000.0, 70.0), 13);
    assert_eq!(steps_for_radius(1000.0, -85.0), 12);
    let cell = encode(WGS84_LON, WGS84_LAT, 13.361389, 38.115556, 26).expect("cell");
    assert_eq!(align52(cell), 3479099956230698);
    let mut c = cell;
    move_x(&mut c, 1);
    move_x(&mut c, -1);
    move_y(&mut c, 1);
    move_y(&mut c, -1);
    assert_eq!(c, cell);
    assert_eq!(c_double_to_u64(-1.0), u64::MAX);
    assert_eq!(c_double_to_u64(f64::INFINITY), 0);
    assert_eq!(c_double_to_u64(f64::NEG_INFINITY), 1 << 63);
    assert_eq!(c_double_to_u64(1e19), 10_000_000_000_000_000_000);
}

#[test]
fn written_store_key_is_the_routed_one() {
    let keys = |args: &[&str]| {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let mut out = Vec::new();
        radius_keys(&args, &mut out);
        out
    };
    assert_eq!(keys(&["georadius", "g", "1", "1", "1", "km"]), vec![1]);
    assert_eq!(
        keys(&[
            "georadius",
            "g",
            "1",
            "1",
            "1",
            "km",
            "store",
            "a",
            "storedist",
            "b"
        ]),
        vec![1, 9]
    );
    assert_eq!(
        keys(&[
            "georadiusbymember",
            "g",
            "m",
            "1",
            "km",
            "storedist",
            "storedist",
            "storedist",
            "dst"
        ]),
        vec![1, 8]
    );
    let mut t = TestShard::new();
    t.run(&["geoadd", "g", "13.361389", "38.115556", "Palermo"]);
    assert_eq!(
        t.run(&[
            "georadiusbymember",
            "g",
            "Palermo",
            "1",
            "km",
            "storedist",
            "storedist",
            "storedist",
            "dst"
        ]),
        int(1)
    );
    assert_eq!(t.run(&["exists", "storedist", "dst"]), int(1));
    assert_eq!(t.run(&["zrange", "dst", "0", "-1"]), bulks(&["Palermo"]));
}
