//! Interim reply encoder (replaced by the full encoder).

use crate::Reply;

pub fn format_double(v: f64) -> String {
    format!("{}", v)
}

pub fn encode(reply: &Reply, resp3: bool, out: &mut Vec<u8>) {
    match reply {
        Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
        Reply::Simple(s) => line(out, b'+', s.as_bytes()),
        Reply::Error(s) => line(out, b'-', s.as_bytes()),
        Reply::Int(n) => line(out, b':', n.to_string().as_bytes()),
        Reply::Bulk(b) | Reply::Verbatim(b) => bulk(out, b),
        Reply::Nil => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        Reply::NilArray => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
        Reply::Array(v) | Reply::Set(v) | Reply::Push(v) => {
            line(out, b'*', v.len().to_string().as_bytes());
            for r in v {
                encode(r, resp3, out);
            }
        }
        Reply::Map(v) => {
            if resp3 {
                line(out, b'%', v.len().to_string().as_bytes());
            } else {
                line(out, b'*', (v.len() * 2).to_string().as_bytes());
            }
            for (k, val) in v {
                encode(k, resp3, out);
                encode(val, resp3, out);
            }
        }
        Reply::Double(d) => bulk(out, format_double(*d).as_bytes()),
        Reply::Bool(b) => out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
    }
}

fn line(out: &mut Vec<u8>, prefix: u8, s: &[u8]) {
    out.push(prefix);
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    line(out, b'$', b.len().to_string().as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}
