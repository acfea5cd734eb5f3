//! Property tests: requests survive encode → chunked parse, arbitrary bytes never panic the
//! parser and parse the same however they are split, replies frame consistently in both
//! protocols, and doubles print exactly as the C library's `%.17g`.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use shardis_resp::{
    encode, encode_request, format_double, Limits, ProtocolError, Reply, RequestParser,
};

/// Parses `input` fed in pieces of the given sizes (cycled), collecting commands until the
/// input is exhausted or an error.
fn parse_chunked(input: &[u8], chunks: &[usize]) -> (Vec<Vec<Bytes>>, Option<ProtocolError>) {
    let limits = Limits::default();
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    let mut args = Vec::new();
    let mut pos = 0;
    let mut sizes = chunks.iter().cycle();
    while pos < input.len() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, input.len() - pos);
        buf.extend_from_slice(&input[pos..pos + n]);
        pos += n;
        loop {
            match parser.next_into(&mut buf, &limits, &mut args) {
                Ok(true) => commands.push(args.clone()),
                Ok(false) => break,
                Err(e) => return (commands, Some(e)),
            }
        }
    }
    (commands, None)
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(0u8), Just(b'$'), Just(b'*')],
            0..8
        ),
    ]
}

fn command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(arg(), 1..12)
}

proptest! {
    #[test]
    fn requests_round_trip_in_any_chunking(
        commands in proptest::collection::vec(command(), 1..8),
        chunks in proptest::collection::vec(1usize..64, 1..16),
    ) {
        let mut wire = Vec::new();
        for c in &commands {
            let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            encode_request(&args, &mut wire);
        }
        let (parsed, err) = parse_chunked(&wire, &chunks);
        prop_assert!(err.is_none());
        let parsed: Vec<Vec<Vec<u8>>> =
            parsed.iter().map(|c| c.iter().map(|a| a.to_vec()).collect()).collect();
        prop_assert_eq!(parsed, commands);
    }

    #[test]
    fn arbitrary_bytes_parse_the_same_in_any_chunking(
        input in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\r'), Just(b'\n'), Just(b'*'), Just(b'$'), Just(b'"'), Just(b'1')],
            0..600,
        ),
        chunks in proptest::collection::vec(1usize..32, 1..8),
    ) {
        let whole = parse_chunked(&input, &[input.len().max(1)]);
        let split = parse_chunked(&input, &chunks);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn replies_frame_consistently(reply in reply_tree(), resp3 in any::<bool>()) {
        let mut out = Vec::new();
        encode(&reply, resp3, &mut out);
        let mut pos = 0;
        let decoded = decode(&out, &mut pos);
        prop_assert_eq!(pos, out.len(), "trailing bytes after one reply");
        prop_assert_eq!(decoded, Some(expected(&reply, resp3)));
    }

    #[test]
    fn doubles_print_as_c_printf(bits in any::<u64>()) {
        let v = f64::from_bits(bits);
        prop_assume!(!v.is_nan());
        prop_assert_eq!(format_double(v), c_g17(v));
    }

    #[test]
    fn short_binary_fractions_and_integers_print_as_c_printf(
        m in -(1i64 << 60)..(1i64 << 60),
        k in -12i32..40,
    ) {
        let v = m as f64 * 2f64.powi(-k);
        prop_assert_eq!(format_double(v), c_g17(v));
    }

    #[test]
    fn human_scale_doubles_print_as_c_printf(v in -1e20f64..1e20, scale in -30i32..30) {
        let v = v * 10f64.powi(scale);
        prop_assert_eq!(format_double(v), c_g17(v));
    }
}

#[test]
fn ties_round_as_c_printf() {
    // Doubles whose exact decimal value has 18 significant digits ending in 5: %.17g must
    // round them half to even, as glibc does.
    for m in [26215u32, 26217, 26219, 52429, 52431, 131073, 131075] {
        let v = f64::from(m) / 262144.0;
        assert_eq!(format_double(v), c_g17(v), "{}", m);
    }
}

fn c_g17(v: f64) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: the buffer outlives the call, its size is passed, and the format takes one double.
    let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), v) };
    String::from_utf8_lossy(&buf[..n as usize]).into_owned()
}

fn reply_tree() -> impl Strategy<Value = Reply> {
    let leaf = prop_oneof![
        Just(Reply::Ok),
        "[a-zA-Z \r\n]{0,12}".prop_map(|s| Reply::Simple(s.into())),
        "[A-Z]{1,5} [a-z\r\n]{0,12}".prop_map(|s| Reply::Error(s.into())),
        any::<i64>().prop_map(Reply::Int),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(|b| Reply::Bulk(b.into())),
        Just(Reply::Nil),
        Just(Reply::NilArray),
        any::<f64>().prop_map(Reply::Double),
        any::<bool>().prop_map(Reply::Bool),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(|b| Reply::Verbatim(b.into())),
        "[0-9]{1,40}".prop_map(|s| Reply::BigNumber(s.into())),
        ("[a-z]{3}", proptest::collection::vec(any::<u8>(), 0..20)).prop_map(|(f, b)| {
            let mut format = [0u8; 3];
            format.copy_from_slice(f.as_bytes());
            Reply::VerbatimAs(format, b.into())
        }),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Reply::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Reply::Set),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Reply::Push),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Reply::Map),
        ]
    })
}

/// A decoded RESP value: the type byte and either its line or its length-checked payload,
/// or its children.
#[derive(Debug, PartialEq)]
enum Frame {
    Line(u8, Vec<u8>),
    Blob(u8, Vec<u8>),
    Aggregate(u8, Vec<Frame>),
}

/// What `reply` must decode to, built independently of the encoder.
fn expected(reply: &Reply, resp3: bool) -> Frame {
    let line = |kind, text: &str| Frame::Line(kind, text.replace(['\r', '\n'], " ").into_bytes());
    let agg = |kind, items: &[Reply]| {
        Frame::Aggregate(kind, items.iter().map(|r| expected(r, resp3)).collect())
    };
    match reply {
        Reply::Ok => line(b'+', "OK"),
        Reply::Simple(s) => line(b'+', s),
        Reply::Error(s) => line(b'-', s),
        Reply::Int(n) => line(b':', &n.to_string()),
        Reply::Bulk(b) => Frame::Blob(b'$', b.to_vec()),
        Reply::Nil | Reply::NilArray if resp3 => line(b'_', ""),
        Reply::Nil => line(b'$', "-1"),
        Reply::NilArray => line(b'*', "-1"),
        Reply::Array(items) => agg(b'*', items),
        Reply::Set(items) => agg(if resp3 { b'~' } else { b'*' }, items),
        Reply::Push(items) => agg(if resp3 { b'>' } else { b'*' }, items),
        Reply::Map(pairs) => Frame::Aggregate(
            if resp3 { b'%' } else { b'*' },
            pairs
                .iter()
                .flat_map(|(k, v)| [expected(k, resp3), expected(v, resp3)])
                .collect(),
        ),
        Reply::Double(v) if resp3 => line(b',', &format_double(*v)),
        Reply::Double(v) => Frame::Blob(b'$', format_double(*v).into_bytes()),
        Reply::Bool(b) if resp3 => line(b'#', if *b { "t" } else { "f" }),
        Reply::Bool(b) => line(b':', if *b { "1" } else { "0" }),
        Reply::Verbatim(b) if resp3 => Frame::Blob(b'=', [&b"txt:"[..], b].concat()),
        Reply::Verbatim(b) => Frame::Blob(b'$', b.to_vec()),
        Reply::BigNumber(b) if resp3 => line(b'(', &String::from_utf8_lossy(b)),
        Reply::BigNumber(b) => Frame::Blob(b'$', b.to_vec()),
        Reply::VerbatimAs(f, b) if resp3 => Frame::Blob(b'=', [&f[..], b":", b].concat()),
        Reply::VerbatimAs(_, b) => Frame::Blob(b'$', b.to_vec()),
        Reply::Multiple(_) | Reply::Attribute(..) => {
            unreachable!("the generator makes one plain reply at a time")
        }
    }
}

/// Decodes one frame at `pos`, checking every length and line ending.
fn decode(data: &[u8], pos: &mut usize) -> Option<Frame> {
    let kind = *data.get(*pos)?;
    let start = *pos + 1;
    let cr = start + data.get(start..)?.windows(2).position(|w| w == b"\r\n")?;
    let text = data[start..cr].to_vec();
    *pos = cr + 2;
    let count = || std::str::from_utf8(&text).ok()?.parse::<i64>().ok();
    match kind {
        b'$' | b'=' if text != b"-1" => {
            let len = usize::try_from(count()?).ok()?;
            let blob = data.get(*pos..*pos + len)?.to_vec();
            if data.get(*pos + len..*pos + len + 2)? != b"\r\n" {
                return None;
            }
            *pos += len + 2;
            Some(Frame::Blob(kind, blob))
        }
        b'*' | b'~' | b'>' | b'%' if text != b"-1" => {
            let n = count()?;
            let n = if kind == b'%' { n * 2 } else { n };
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(decode(data, pos)?);
            }
            Some(Frame::Aggregate(kind, items))
        }
        _ => Some(Frame::Line(kind, text)),
    }
}
