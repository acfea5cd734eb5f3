//! Loads arbitrary text as a cluster node's `cluster-config-file` (nodes.conf), both the
//! cluster bus's (`cluster::bus::conf::load`) and the per-core layout's
//! (`cluster::nodes::parse`): a file damaged or written by hand must give an error, never a
//! panic, and a state that loads must keep its invariants (it knows itself, every slot owner
//! is a known node) and survive CLUSTER NODES and a round of `cron`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardis_server::cluster::bus::state::Announce;
use shardis_server::cluster::bus::{conf, snapshot_of};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = shardis_server::cluster::nodes::parse(text);
    let announce = Announce {
        port: 7000,
        cport: 17000,
        pport: 0,
        ip: String::new(),
    };
    let now = 1_000_000;
    if let Ok(mut st) = conf::load(text, announce, 15_000, now) {
        assert!(st.nodes.contains_key(&st.myself), "loaded without myself");
        for owner in st.slots.iter().flatten() {
            assert!(
                st.nodes.contains_key(owner),
                "a slot owned by an unknown node"
            );
        }
        let view = snapshot_of(&st, &[st.myself]);
        let _ = (view.nodes_text(), view.config_text(st.last_vote_epoch));
        st.cron(now + 20_000);
        st.update_state();
    }
});
