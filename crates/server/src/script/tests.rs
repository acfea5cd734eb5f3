//! Unit tests of the interpreter: Redis's scripting environment and conversions, run against
//! a shard driven directly (no runtime), with the cases of Redis's own `scripting` suite that
//! do not need a server.

use bytes::Bytes;
use shardis_engine::{lookup, Command, Ctx, EngineConfig, Exec, Shard};
use shardis_resp::Reply;

use super::vm::{Flavor, Host, Vm};
use super::{flags, sha1hex};

/// Runs commands on a shard of its own.
struct TestHost {
    shard: Shard,
    resp3: bool,
    killed: bool,
    db: usize,
}

impl TestHost {
    fn new() -> TestHost {
        TestHost {
            shard: Shard::new(0, EngineConfig::default()),
            resp3: false,
            killed: false,
            db: 0,
        }
    }
}

impl Host for TestHost {
    fn call(&mut self, args: Vec<Bytes>) -> Result<Reply, String> {
        let cmd = match lookup(&args) {
            Ok(c) => c,
            Err(Reply::Error(e)) if e.starts_with("ERR unknown") => {
                return Err("Unknown Redis command called from script".into())
            }
            Err(_) => return Err("Wrong number of args calling Redis command from script".into()),
        };
        match cmd.exec {
            Exec::Shard(f) => {
                let mut ctx = Ctx::new(&mut self.shard, self.db, 1_000_000, self.resp3);
                Ok(f(&mut ctx, &args))
            }
            Exec::Server(_) if cmd.name == "ping" => Ok(Reply::simple("PONG")),
            Exec::Server(_) => Err("This Redis command is not allowed from script".into()),
        }
    }
    fn acl_allows(&self, _cmd: &Command, _args: &[Bytes]) -> bool {
        // The engine alone has no users: everything is allowed, as for the default user.
        true
    }
    fn resp3(&self) -> bool {
        self.resp3
    }
    fn set_resp3(&mut self, resp3: bool) {
        self.resp3 = resp3;
    }
    fn set_repl(&mut self, _flags: u8) {}
    fn check(&mut self) -> Result<(), String> {
        if self.killed {
            Err("Script killed by user with SCRIPT KILL...".into())
        } else {
            Ok(())
        }
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Compiles and runs `body` on `vm` with `host`.
fn eval_on(vm: &mut Vm, host: &mut TestHost, body: &str, keys: &[&str], args: &[&str]) -> Reply {
    let sha = String::from_utf8_lossy(&sha1hex(body.as_bytes())).into_owned();
    if let Err(e) = vm.compile_script(&sha, body.as_bytes()) {
        return Reply::error(format!("ERR {e}"));
    }
    let keys: Vec<Bytes> = keys.iter().map(|k| b(k)).collect();
    let args: Vec<Bytes> = args.iter().map(|a| b(a)).collect();
    vm.run_script(host, &sha, &keys, &args, true)
}

fn eval(body: &str) -> Reply {
    let mut vm = Vm::new(Flavor::Eval).expect("vm");
    eval_on(&mut vm, &mut TestHost::new(), body, &[], &[])
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(b(s))
}

fn err_text(r: &Reply) -> String {
    match r {
        Reply::Error(e) => e.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn lua_to_redis_conversions() {
    assert_eq!(eval("return 'hello'"), bulk("hello"));
    assert_eq!(eval("return 100.5"), Reply::Int(100));
    assert_eq!(eval("return true"), Reply::Int(1));
    assert_eq!(eval("return false"), Reply::Nil);
    assert_eq!(eval("return {ok='fine'}"), Reply::simple("fine"));
    assert_eq!(
        eval("return {err='ERR this is an error'}"),
        Reply::err("ERR this is an error")
    );
    assert_eq!(
        eval("return {1,2,3,'ciao',{1,2}}"),
        Reply::Array(vec![
            Reply::Int(1),
            Reply::Int(2),
            Reply::Int(3),
            bulk("ciao"),
            Reply::Array(vec![Reply::Int(1), Reply::Int(2)]),
        ])
    );
    assert_eq!(eval("return _G"), Reply::Array(vec![]));
    assert_eq!(
        eval("local a = {}; setmetatable(a,{__index=function() foo() end}) return a"),
        Reply::Array(vec![])
    );
    assert_eq!(eval("return 'hello' --trailing comment"), bulk("hello"));
    assert_eq!(
        eval("return redis.status_reply('MY_OK_CODE custom msg')"),
        Reply::simple("MY_OK_CODE custom msg")
    );
    assert_eq!(
        eval("return redis.error_reply('MY_ERR_CODE custom msg')"),
        Reply::err("MY_ERR_CODE custom msg")
    );
    assert_eq!(eval("return redis.error_reply('')"), Reply::err("ERR "));
    assert_eq!(eval("return {double=3.5}"), Reply::Double(3.5));
    assert_eq!(
        eval("return {big_number='123\\r\\n1'}"),
        Reply::BigNumber(b("123  1"))
    );
}

#[test]
fn keys_argv_and_redis_calls() {
    let mut vm = Vm::new(Flavor::Eval).expect("vm");
    let mut host = TestHost::new();
    assert_eq!(
        eval_on(
            &mut vm,
            &mut host,
            "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}",
            &["a", "b"],
            &["c", "d"]
        ),
        Reply::Array(vec![bulk("a"), bulk("b"), bulk("c"), bulk("d")])
    );
    eval_on(
        &mut vm,
        &mut host,
        "redis.call('set', KEYS[1], 'myval')",
        &["mykey"],
        &[],
    );
    assert_eq!(
        eval_on(
            &mut vm,
            &mut host,
            "return redis.call('get',KEYS[1])",
            &["mykey"],
            &[]
        ),
        bulk("myval")
    );
    assert_eq!(
        eval_on(
            &mut vm,
            &mut host,
            "local foo = redis.pcall('incr',KEYS[1]) return {type(foo),foo['err']}",
            &["mykey"],
            &[]
        ),
        Reply::Array(vec![
            bulk("table"),
            bulk("ERR value is not an integer or out of range")
        ])
    );
    assert_eq!(
        eval_on(
            &mut vm,
            &mut host,
            "local foo = redis.pcall('get','nokey') return {type(foo),foo == false}",
            &[],
            &[]
        ),
        Reply::Array(vec![bulk("boolean"), Reply::Int(1)])
    );
    assert_eq!(
        eval_on(
            &mut vm,
            &mut host,
            "local foo = redis.pcall('set','k','v') return {type(foo),foo['ok']}",
            &[],
            &[]
        ),
        Reply::Array(vec![bulk("table"), bulk("OK")])
    );
    // Numbers travel as %.17g.
    assert_eq!(
        eval_on(
            &mut vm,
            &mut host,
            "redis.call('set','foo',9007199254740991) return redis.call('get','foo')",
            &[],
            &[]
        ),
        bulk("9007199254740991")
    );
    let e = eval_on(&mut vm, &mut host, "redis.call('nosuchcommand')", &[], &[]);
    assert!(err_text(&e).contains("Unknown Redis"), "{e:?}");
    let e = eval_on(
        &mut vm,
        &mut host,
        "redis.call('lpush','foo','val')",
        &[],
        &[],
    );
    assert!(
        err_text(&e).starts_with("WRONGTYPE Operation against a key"),
        "{e:?}"
    );
    assert!(err_text(&e).ends_with(", on @user_script:1."), "{e:?}");
    let e = eval_on(&mut vm, &mut host, "return redis.call()", &[], &[]);
    assert!(err_text(&e).contains("one argument"), "{e:?}");
    let e = eval_on(
        &mut vm,
        &mut host,
        "local x={} return redis.call('ping', x)",
        &[],
        &[],
    );
    assert!(
        err_text(&e).starts_with("ERR Lua redis lib command arguments must be strings or integers"),
        "{e:?}"
    );
    // Many arguments.
    assert_eq!(
        eval_on(
            &mut vm,
            &mut host,
            "local a = {} for i=1,7999 do a[i] = 1 end return redis.call('lpush', 'l', unpack(a))",
            &[],
            &[]
        ),
        Reply::Int(7999)
    );
}

#[test]
fn resp3_conversions() {
    let mut vm = Vm::new(Flavor::Eval).expect("vm");
    let mut host = TestHost::new();
    eval_on(
        &mut vm,
        &mut host,
        "redis.call('hset','h','field','value')",
        &[],
        &[],
    );
    assert_eq!(
        eval_on(
            &mut vm,
            &mut host,
            "redis.setresp(3) return redis.call('hgetall','h')",
            &[],
            &[]
        ),
        Reply::Map(vec![(bulk("field"), bulk("value"))])
    );
    assert_eq!(
        eval_on(
            &mut vm,
            &mut host,
            "redis.setresp(2) return redis.call('hgetall','h')",
            &[],
            &[]
        ),
        Reply::Array(vec![bulk("field"), bulk("value")])
    );
    assert_eq!(
        eval_on(&mut vm, &mut host, "redis.setresp(3) return true", &[], &[]),
        Reply::Bool(true)
    );
    let e = eval_on(&mut vm, &mut host, "redis.setresp(4)", &[], &[]);
    assert!(
        err_text(&e).contains("RESP version must be 2 or 3"),
        "{e:?}"
    );
}

#[test]
fn globals_are_protected() {
    let e = eval("return a");
    assert!(err_text(&e).starts_with("ERR "), "{e:?}");
    assert!(err_text(&e).contains("attempted to access nonexistent global variable 'a'"));
    for body in [
        "a=10",
        "setmetatable(_G, {})",
        "local g = getmetatable(_G) g.__index = {}",
        "redis = function() return 1 end",
        "_G = {}",
        "redis.call = function() return 1 end",
        "cjson.encode = function() return 1 end",
        "cmsgpack.pack = function() return 1 end",
        "bit.lshift = function() return 1 end",
        "string.x = 1",
        "rawset(redis, 'call', 1)",
        "rawset(_G, 'x', 1)",
        "table.insert(redis, 1)",
        "getfenv(0).x = 1",
    ] {
        let e = eval(body);
        assert!(
            err_text(&e).contains("Attempt to modify a readonly table"),
            "{body}: {e:?}"
        );
    }
    for name in [
        "loadfile", "dofile", "print", "os", "io", "debug", "require",
    ] {
        let e = eval(&format!("{name}('x')"));
        assert!(
            err_text(&e).contains(&format!(
                "Script attempted to access nonexistent global variable '{name}'"
            )),
            "{name}: {e:?}"
        );
    }
    // Reads through the proxies see the real tables.
    assert_eq!(eval("return type(rawget(redis, 'call'))"), bulk("function"));
    assert_eq!(
        eval("local n = 0 for k, v in pairs(bit) do n = n + 1 end return n"),
        Reply::Int(12)
    );
    assert_eq!(
        eval("return string.upper('x') .. ('y'):upper()"),
        bulk("XY")
    );
    assert_eq!(eval("return getmetatable(string)"), Reply::Nil);
}

#[test]
fn pcall_and_errors() {
    assert_eq!(
        eval("local status, res = pcall(function() return 1 end); return 'status: ' .. tostring(status) .. ' result: ' .. res"),
        bulk("status: true result: 1")
    );
    let r = eval("local status, res = pcall(function() return foo end); return 'status: ' .. tostring(status) .. ' result: ' .. res");
    match r {
        Reply::Bulk(b) => {
            let s = String::from_utf8_lossy(&b).into_owned();
            assert!(s.starts_with("status: false result:"), "{s}");
            assert!(s.ends_with("Script attempted to access nonexistent global variable 'foo'"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        eval("local ok, e = pcall(redis.call, 'incr', 'nokey', 'x') return e"),
        bulk("ERR Wrong number of args calling Redis command from script")
    );
    let body = "error('boom')";
    let sha = String::from_utf8_lossy(&sha1hex(body.as_bytes())).into_owned();
    assert_eq!(
        err_text(&eval(body)),
        format!("ERR user_script:1: boom script: {sha}, on @user_script:1.")
    );
    let e = eval("return loadstring(string.dump(function() return 1 end))()");
    assert!(
        err_text(&e).contains("attempt to call a nil value"),
        "{e:?}"
    );
    assert_eq!(eval("return loadstring('return 5')()"), Reply::Int(5));
    let e = eval("redis.sha1hex()");
    assert!(err_text(&e).contains("wrong number"), "{e:?}");
}

#[test]
fn sha1_and_random() {
    assert_eq!(
        eval("return redis.sha1hex('')"),
        bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );
    assert_eq!(
        eval("return redis.sha1hex('Pizza & Mandolino')"),
        bulk("74822d82031af7493c20eefa13bd07ec4fada82f")
    );
    let mut vm = Vm::new(Flavor::Eval).expect("vm");
    let mut host = TestHost::new();
    let seeded = "math.randomseed(ARGV[1]); return tostring(math.random())";
    let a = eval_on(&mut vm, &mut host, seeded, &[], &["10"]);
    let b2 = eval_on(&mut vm, &mut host, seeded, &[], &["10"]);
    let c = eval_on(&mut vm, &mut host, seeded, &[], &["20"]);
    assert_eq!(a, b2);
    assert_ne!(b2, c);
    let r1 = eval_on(
        &mut vm,
        &mut host,
        "return tostring(math.random())",
        &[],
        &[],
    );
    let r2 = eval_on(
        &mut vm,
        &mut host,
        "return tostring(math.random())",
        &[],
        &[],
    );
    assert_ne!(r1, r2);
}

#[test]
fn libraries() {
    assert_eq!(
        eval("return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')"),
        bulk("0 -5000 -1 0.0003 1023.2 0")
    );
    assert_eq!(
        eval(
            "local d = cjson.decode('{\"keya\": \"a\", \"keyb\": \"b\"}') return {d.keya, d.keyb}"
        ),
        Reply::Array(vec![bulk("a"), bulk("b")])
    );
    assert_eq!(
        eval("return cjson.encode({1,2,'x/y',{}})"),
        bulk("[1,2,\"x\\/y\",{}]")
    );
    assert_eq!(eval("return cjson.encode({a=0.1})"), bulk("{\"a\":0.1}"));
    let e = eval("return cjson.decode('[1,')");
    assert!(
        err_text(&e).contains("Expected value but found T_END at character 4"),
        "{e:?}"
    );
    let smoke = r#"
        local some_map = {s1="Some string", n1=100, a1={"Some","String","Array"}, nil1=nil, b1=true, b2=false}
        local encoded = cjson.encode(some_map)
        local decoded = cjson.decode(encoded)
        assert(table.concat(some_map) == table.concat(decoded))
        cjson.encode_keep_buffer(false)
        local table1 = {one="one", [1]="one"}
        decoded = cjson.decode(cjson.encode(table1))
        assert(decoded["one"] == table1["one"])
        assert(decoded["1"] == table1[1])
        local invalid_map = {}
        invalid_map[false] = "false"
        local ok = pcall(cjson.encode, invalid_map)
        assert(ok == false)
        cjson.encode_max_depth(1)
        ok = pcall(cjson.encode, some_map)
        assert(ok == false)
        cjson.decode_max_depth(1)
        ok = pcall(cjson.decode, '{"obj": {"array": [1,2,3,4]}}')
        assert(ok == false)
        ok = pcall(cjson.encode, {num1=0/0})
        assert(ok == false)
        cjson.encode_invalid_numbers(true)
        ok = pcall(cjson.encode, {num1=0/0})
        assert(ok == true)
        cjson.decode_max_depth(1000)
        cjson.encode_max_depth(1000)
        cjson.encode_invalid_numbers(false)
        return 1
    "#;
    assert_eq!(eval(smoke), Reply::Int(1));
    let hex = |body: &str| {
        eval(&format!(
            "local e = {body} local h = '' for i = 1, #e do h = h .. string.format('%02x', string.byte(e, i)) end return h"
        ))
    };
    assert_eq!(hex("cmsgpack.pack(0.1)"), bulk("cb3fb999999999999a"));
    assert_eq!(
        hex("cmsgpack.pack(-1099511627776)"),
        bulk("d3ffffff0000000000")
    );
    let circular = r#"
        local a = {x=nil,y=5}
        local b = {x=a}
        a['x'] = b
        local encoded = cmsgpack.pack(a)
        local h = ""
        for i = 1, #encoded do h = h .. string.format("%02x",string.byte(encoded,i)) end
        local re = cmsgpack.unpack(encoded)
        assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.y == re.y)
        assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x)
        assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x == nil)
        return {h, re.x.x.x.x.x.x.x.x.y == re.y, re.y == 5}
    "#;
    assert_eq!(
        eval(circular),
        Reply::Array(vec![
            bulk("82a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a178c0"),
            Reply::Int(1),
            Reply::Int(1),
        ])
    );
    let msgpack_smoke = r#"
        local str_lt_32 = string.rep("x", 30)
        local str_lt_255 = string.rep("x", 250)
        local str_lt_65535 = string.rep("x", 65530)
        local str_long = string.rep("x", 100000)
        local array_big = {}
        for i=1, 100000 do array_big[i] = i end
        local map_big = {}
        for i=1, 100000 do map_big[tostring(i)] = i end
        local some_map = {s1=str_lt_32, s2=str_lt_255, s3=str_lt_65535, s4=str_long, d1=0.1,
            i1=1, i2=250, i3=65530, i4=100000, i5=2^40, i6=-1, i7=-120, i8=-32000, i9=-100000,
            i10=-3147483648, a3=array_big, m2=map_big, b1=false, b2=true, n=nil}
        local encoded = cmsgpack.pack(some_map)
        local decoded = cmsgpack.unpack(encoded)
        assert(table.concat(some_map) == table.concat(decoded))
        local offset, decoded_one = cmsgpack.unpack_one(encoded, 0)
        assert(offset == -1)
        local encoded_multiple = cmsgpack.pack(str_lt_32, str_lt_255, str_lt_65535, str_long)
        local offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, 0)
        assert(obj == str_lt_32)
        offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
        assert(obj == str_lt_255)
        offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
        assert(obj == str_lt_65535)
        offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
        assert(obj == str_long)
        assert(offset == -1)
        return 1
    "#;
    assert_eq!(eval(msgpack_smoke), Reply::Int(1));
    assert_eq!(
        eval("assert(bit.tobit(1) == 1); assert(bit.band(1) == 1); assert(bit.bxor(1,2) == 3); assert(bit.bor(1,2,4,8,16,32,64,128) == 255) return bit.tohex(65535, -4)"),
        bulk("FFFF")
    );
    assert_eq!(
        eval("local s = struct.pack('>HI2s', 258, 3, 'ab') local a, b2, c, n = struct.unpack('>HI2s', s) return {a, b2, c, n, struct.size('!4bi')}"),
        Reply::Array(vec![Reply::Int(258), Reply::Int(3), bulk("ab"), Reply::Int(8), Reply::Int(8)])
    );
}

#[test]
fn recursive_reply_is_cut() {
    let r = eval("local a = {}; local b = {a}; a[1] = b; return a");
    let mut depth = 0;
    let mut cur = &r;
    while let Reply::Array(items) = cur {
        depth += 1;
        cur = &items[0];
    }
    assert!(depth > 100);
    assert_eq!(cur, &Reply::err("ERR reached lua stack limit"));
}

#[test]
fn kill_stops_even_under_pcall() {
    let mut vm = Vm::new(Flavor::Eval).expect("vm");
    let mut host = TestHost::new();
    host.killed = true;
    let r = eval_on(
        &mut vm,
        &mut host,
        "local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end",
        &[],
        &[],
    );
    assert!(
        err_text(&r).contains("Script killed by user with SCRIPT KILL"),
        "{r:?}"
    );
    // The interpreter is usable afterwards.
    host.killed = false;
    assert_eq!(
        eval_on(&mut vm, &mut host, "return 1", &[], &[]),
        Reply::Int(1)
    );
}

fn load(vm: &mut Vm, code: &str) -> Result<Vec<super::vm::Registered>, String> {
    vm.load_library(code.as_bytes(), Some(std::time::Duration::from_millis(500)))
}

#[test]
fn function_libraries() {
    let mut vm = Vm::new(Flavor::Functions).expect("vm");
    let f = load(
        &mut vm,
        "local function add1(a) return a + 1 end\n\
         redis.register_function('f1', function(keys, args) return add1(1) end)\n\
         redis.register_function{function_name='f2', callback=function(keys, args) return redis.call('ping') end, flags={'no-writes'}, description='d'}",
    )
    .expect("loads");
    assert_eq!(f.len(), 2);
    assert_eq!(f[1].flags, flags::NO_WRITES);
    assert_eq!(f[1].description.as_deref(), Some("d"));
    let mut host = TestHost::new();
    assert_eq!(
        vm.run_function(&mut host, "f1", f[0].reference, &[], &[], true),
        Reply::Int(2)
    );
    assert_eq!(
        vm.run_function(&mut host, "f2", f[1].reference, &[], &[], true),
        Reply::simple("PONG")
    );
    for (code, expected) in [
        ("return math.random()", "attempted to access nonexistent global variable 'math'"),
        ("return redis.call('ping')", "attempted to access nonexistent global variable 'call'"),
        ("a = 1", "Attempt to modify a readonly table"),
        ("redis.register_function()", "wrong number of arguments to redis.register_function"),
        ("redis.register_function('f1')", "calling redis.register_function with a single argument is only applicable to Lua table"),
        ("redis.register_function(nil, function() return 1 end)", "first argument to redis.register_function must be a string"),
        ("redis.register_function('a b', function() return 1 end)", "Library names can only contain letters"),
        ("redis.register_function('f1', 'x')", "second argument to redis.register_function must be a function"),
        ("redis.register_function{function_name='f1', callback=function() end, flags={'bad'}}", "unknown flag given"),
        ("mt = getmetatable(_G)", "attempted to access nonexistent global variable 'getmetatable'"),
        ("local a = 1 while 1 do a = a + 1 end", "FUNCTION LOAD timeout"),
        ("redis.register_function('x', function() return 1 end) redis.register_function('x', function() return 1 end)", "Function already exists in the library"),
        ("return bad script", "Error compiling function"),
    ] {
        let e = load(&mut vm, code).err().unwrap_or_default();
        assert!(e.contains(expected), "{code}: {e}");
    }
    // Registering is for loading only; the run-time `redis` has no register_function.
    let f = load(
        &mut vm,
        "redis.register_function('f3', function() redis.register_function('f4', function() return 2 end) return 1 end)",
    )
    .expect("loads");
    let e = vm.run_function(&mut host, "f3", f[0].reference, &[], &[], true);
    assert!(
        err_text(&e).contains("attempt to call field 'register_function' (a nil value)"),
        "{e:?}"
    );
    let f = load(
        &mut vm,
        "local lib = redis\nlib.register_function('f5', function() lib.redis = redis return {ok='OK'} end)\n\
         lib.register_function('f6', function() lib.register_function('f5', function() end) end)",
    )
    .expect("loads");
    let e = vm.run_function(&mut host, "f5", f[0].reference, &[], &[], true);
    assert!(
        err_text(&e).contains("Attempt to modify a readonly table"),
        "{e:?}"
    );
    let e = vm.run_function(&mut host, "f6", f[1].reference, &[], &[], true);
    assert!(
        err_text(&e).contains("can only be called on FUNCTION LOAD command"),
        "{e:?}"
    );
}
