//! What COMMAND DOCS says about each command Shardis implements beyond its facts: a summary,
//! the time complexity, doc flags, deprecation and the history of its options. `redis-cli`
//! shows these in `help` and its hints.
//!
//! Maintained by hand, in the project's own words (never Redis's documentation text): a
//! command or subcommand added to the table needs an entry here, which a unit test enforces.
//! The table was first typed as a plain list and turned into Rust by a throwaway script; edit
//! it directly. Complexities are Redis 7.0's facts in our phrasing; deprecation, replacement,
//! doc flags and history versions are its facts as they are. Entries are sorted by full name
//! (`client|list`), so lookups can bisect.

/// Documentation of one command or subcommand.
#[derive(Debug)]
pub struct CommandDoc {
    /// Full name as in the command table: `get`, or `client|list` for a subcommand.
    pub name: &'static str,
    pub summary: &'static str,
    /// Time complexity; `None` where Redis gives none (MONITOR, SYNC, PSYNC).
    pub complexity: Option<&'static str>,
    /// `deprecated`, or `syscmd` for commands meant for servers, not people.
    pub doc_flags: &'static [&'static str],
    /// Since which version the command is deprecated, and what replaces it.
    pub deprecated: Option<(&'static str, &'static str)>,
    /// Changes to the command: (version, what changed).
    pub history: &'static [(&'static str, &'static str)],
}

const fn doc(name: &'static str, summary: &'static str, complexity: &'static str) -> CommandDoc {
    CommandDoc {
        name,
        summary,
        complexity: Some(complexity),
        doc_flags: &[],
        deprecated: None,
        history: &[],
    }
}

/// For the replication streams, which Redis documents without a complexity.
const fn doc_without_complexity(name: &'static str, summary: &'static str) -> CommandDoc {
    CommandDoc {
        complexity: None,
        ..doc(name, summary, "")
    }
}

impl CommandDoc {
    const fn syscmd(mut self) -> Self {
        self.doc_flags = &["syscmd"];
        self
    }

    const fn deprecated(mut self, since: &'static str, replaced_by: &'static str) -> Self {
        self.doc_flags = &["deprecated"];
        self.deprecated = Some((since, replaced_by));
        self
    }

    const fn history(mut self, history: &'static [(&'static str, &'static str)]) -> Self {
        self.history = history;
        self
    }
}

/// The documentation of a command by full name (`client|list`).
pub fn lookup(name: &str) -> Option<&'static CommandDoc> {
    DOCS.binary_search_by(|d| d.name.cmp(name))
        .ok()
        .map(|i| &DOCS[i])
}

static DOCS: &[CommandDoc] = &[
    doc("acl", "Access-control-list commands: users, their rules and the ACL log", "Varies with the subcommand."),
    doc("acl|cat", "Lists the ACL categories, or the commands that belong to one category", "O(1): categories and commands are a fixed set."),
    doc("acl|deluser", "Removes ACL users and closes their connections", "O(1) amortized for a typical user."),
    doc("acl|dryrun", "Tells whether a user may run a given command, without running it", "O(1)."),
    doc("acl|genpass", "Generates a random password suitable for an ACL user", "O(1)"),
    doc("acl|getuser", "Shows the rules of one ACL user", "O(N), N being how many password, command and pattern rules the user carries.").history(&[("6.2.0", "Pub/Sub channel patterns are reported."), ("7.0.0", "Selectors are reported, and key and channel patterns are given in their rule form instead of as a list.")]),
    doc("acl|help", "Lists the ACL subcommands with a short usage note", "O(1)"),
    doc("acl|list", "Lists every ACL user as a rule line, as an ACL file would hold it", "O(N), N being the number of users."),
    doc("acl|load", "Replaces the ACL users with those of the configured ACL file", "O(N), N being the number of users."),
    doc("acl|log", "Shows, or clears, recent access denials", "O(N), N being the number of entries returned."),
    doc("acl|save", "Persists the ACL users in the ACL file named by the configuration", "O(N), N being the number of users."),
    doc("acl|setuser", "Creates an ACL user or changes its rules", "O(N), N being the number of rules given.").history(&[("6.2.0", "Pub/Sub channel patterns can be given."), ("7.0.0", "Selectors and per-key read/write permissions can be given.")]),
    doc("acl|users", "Lists the names of the ACL users", "O(N), N being the number of users."),
    doc("acl|whoami", "Names the user the connection is authenticated as", "O(1)"),
    doc("append", "Adds a string to the end of a key's value, creating the key when missing", "O(1) amortized: the stored string grows geometrically, so appending a short value costs constant time whatever the current length."),
    doc("asking", "Marks the connection so the next command may touch a slot that is being imported", "O(1)"),
    doc("auth", "Authenticates the connection with a password, or a user name and password", "O(N), N being the number of passwords the user has.").history(&[("6.0.0", "A user name can be given with the password (ACL users).")]),
    doc("bgrewriteaof", "Rewrites the append-only file in the background", "O(1)"),
    doc("bgsave", "Writes a snapshot of the data set to disk in the background", "O(1)").history(&[("3.2.2", "`SCHEDULE` queues the save when a rewrite is already running.")]),
    doc("bitcount", "Counts the bits set to 1 in a string, optionally within a range", "O(N)").history(&[("7.0.0", "The range can be given in bits with `BIT` (`BYTE` stays the default).")]),
    doc("bitfield", "Reads, writes and increments integer fields of arbitrary width inside a string", "O(1) per operation given."),
    doc("bitfield_ro", "Reads integer fields of arbitrary width inside a string (read-only BITFIELD)", "O(1) per operation given."),
    doc("bitop", "Combines strings bit by bit (AND, OR, XOR, NOT) and stores the result", "O(N)"),
    doc("bitpos", "Finds the first bit set to 0 or to 1 in a string, optionally within a range", "O(N)").history(&[("7.0.0", "The range can be given in bits with `BIT` (`BYTE` stays the default).")]),
    doc("blmove", "Moves an element from one list to another, waiting for one while the source is empty", "O(1)"),
    doc("blmpop", "Pops elements from the first non-empty list among several, waiting while all are empty", "O(N+M), N being the number of keys given and M the number of elements popped."),
    doc("blpop", "Pops the first element of the first non-empty list among several, waiting while all are empty", "O(N), N being the number of keys given.").history(&[("6.0.0", "`timeout` accepts fractional seconds.")]),
    doc("brpop", "Pops the last element of the first non-empty list among several, waiting while all are empty", "O(N), N being the number of keys given.").history(&[("6.0.0", "`timeout` accepts fractional seconds.")]),
    doc("brpoplpush", "Moves the last element of a list to the head of another, waiting while the source is empty", "O(1)").deprecated("6.2.0", "`BLMOVE` with the `RIGHT` and `LEFT` arguments").history(&[("6.0.0", "`timeout` accepts fractional seconds.")]),
    doc("bzmpop", "Pops members by score from the first non-empty sorted set among several, waiting while all are empty", "O(K) + O(M*log(N)): K keys given, M members popped, N members in the sorted set."),
    doc("bzpopmax", "Pops the highest-scored member of the first non-empty sorted set among several, waiting while all are empty", "O(log(N)), N being the size of the sorted set.").history(&[("6.0.0", "`timeout` accepts fractional seconds.")]),
    doc("bzpopmin", "Pops the lowest-scored member of the first non-empty sorted set among several, waiting while all are empty", "O(log(N)), N being the size of the sorted set.").history(&[("6.0.0", "`timeout` accepts fractional seconds.")]),
    doc("client", "Commands about client connections", "Varies with the subcommand."),
    doc("client|caching", "Tells whether the next command's reads are tracked, in opt-in or opt-out tracking", "O(1)"),
    doc("client|getname", "Returns the name given to the connection", "O(1)"),
    doc("client|getredir", "Returns the id of the client that tracking invalidations are redirected to", "O(1)"),
    doc("client|help", "Lists the CLIENT subcommands with a short usage note", "O(1)"),
    doc("client|id", "Returns the connection's unique id", "O(1)"),
    doc("client|info", "Describes the calling connection, in the CLIENT LIST format", "O(1)"),
    doc("client|kill", "Closes client connections chosen by address, id, type, user or other filters", "O(N), N being the number of connections.").history(&[("2.8.12", "Filters can be given as field/value pairs."), ("2.8.12", "The `ID` filter."), ("3.2.0", "`master` is accepted as a `TYPE`."), ("5.0.0", "`replica` names the replica `TYPE`; `slave` is still understood."), ("6.2.0", "The `LADDR` filter.")]),
    doc("client|list", "Lists the client connections and their state", "O(N), N being the number of connections.").history(&[("2.8.12", "Each client's `id` is shown."), ("5.0.0", "The `TYPE` filter."), ("6.0.0", "Each client's `user` is shown."), ("6.2.0", "The `argv-mem`, `tot-mem`, `laddr` and `redir` fields, and the `ID` filter."), ("7.0.0", "The `resp`, `multi-mem`, `rbs` and `rbp` fields."), ("7.0.3", "The `ssub` field.")]),
    doc("client|no-evict", "Exempts the connection from client eviction, or ends the exemption", "O(1)"),
    doc("client|pause", "Holds the commands of all clients, or only their writes, for a while", "O(1)").history(&[("6.2.0", "A mode can be given: `WRITE` holds only writes, `ALL` every command.")]),
    doc("client|reply", "Switches the server's replies to this connection on or off", "O(1)"),
    doc("client|setinfo", "Records the client library's name or version on the connection", "O(1)"),
    doc("client|setname", "Gives the connection a name", "O(1)"),
    doc("client|tracking", "Turns client-side caching key tracking on or off for the connection", "O(1); some options add work of their own."),
    doc("client|trackinginfo", "Describes the connection's key tracking settings", "O(1)"),
    doc("client|unblock", "Wakes a client blocked in a blocking command, as on timeout or with an error", "O(log N), N being the number of connections."),
    doc("client|unpause", "Ends a CLIENT PAUSE", "O(N), N being the number of clients held."),
    doc("cluster", "Commands about Redis Cluster", "Varies with the subcommand."),
    doc("cluster|addslots", "Gives hash slots to this node", "O(N), N being the number of slots given."),
    doc("cluster|addslotsrange", "Gives ranges of hash slots to this node", "O(N), N being the number of slots in the ranges given."),
    doc("cluster|bumpepoch", "Raises this node's config epoch above every epoch it knows", "O(1)"),
    doc("cluster|countkeysinslot", "Counts the keys of one hash slot", "O(1)"),
    doc("cluster|delslots", "Takes hash slots away from this node", "O(N), N being the number of slots given."),
    doc("cluster|delslotsrange", "Takes ranges of hash slots away from this node", "O(N), N being the number of slots in the ranges given."),
    doc("cluster|failover", "Makes this replica take over from its primary", "O(1)"),
    doc("cluster|forget", "Removes a node from this node's view of the cluster for a while", "O(1)"),
    doc("cluster|getkeysinslot", "Returns key names stored in one hash slot", "O(log(N)), N being the number of keys asked for."),
    doc("cluster|help", "Lists the CLUSTER subcommands with a short usage note", "O(1)"),
    doc("cluster|info", "Reports the cluster's state and counters", "O(1)"),
    doc("cluster|keyslot", "Computes the hash slot of a key name", "O(N), N being the length of the key in bytes."),
    doc("cluster|links", "Describes this node's cluster bus links", "O(N), N being the number of nodes in the cluster."),
    doc("cluster|meet", "Connects this node to another node so both join one cluster", "O(1)").history(&[("4.0.0", "The cluster bus port can be given.")]),
    doc("cluster|myid", "Names the node answering, by its cluster id", "O(1)"),
    doc("cluster|nodes", "Describes every node of the cluster, as the node's config file holds it", "O(N), N being the number of nodes in the cluster."),
    doc("cluster|replicas", "Lists the replicas of a primary node", "O(1)"),
    doc("cluster|replicate", "Makes this node a replica of a given primary", "O(1)"),
    doc("cluster|reset", "Forgets the cluster's nodes and slots, softly or hard", "O(N), N being the number of known nodes; it may also flush every key."),
    doc("cluster|saveconfig", "Writes the cluster configuration to disk now", "O(1)"),
    doc("cluster|set-config-epoch", "Gives a freshly started node its first config epoch", "O(1)"),
    doc("cluster|setslot", "Changes the state of a hash slot (migrating, importing, owner, stable)", "O(1)"),
    doc("cluster|shards", "Describes the cluster's shards: their slots and nodes", "O(N), N being the number of nodes in the cluster."),
    doc("cluster|slaves", "Lists the replicas of a primary node (old name of CLUSTER REPLICAS)", "O(1)").deprecated("5.0.0", "`CLUSTER REPLICAS`"),
    doc("cluster|slots", "Maps hash slot ranges to the nodes that serve them", "O(N), N being the number of nodes in the cluster.").deprecated("7.0.0", "`CLUSTER SHARDS`").history(&[("4.0.0", "Node ids are included."), ("7.0.0", "A field of extra networking metadata is included.")]),
    doc("command", "Describes every command the server knows", "O(N), N being the number of commands."),
    doc("command|count", "Counts the commands the server knows", "O(1)"),
    doc("command|docs", "Documents commands: summary, history, arguments", "O(N), N being the number of commands asked for."),
    doc("command|getkeys", "Extracts the key names from a full command line", "O(N), N being the number of arguments of the command line."),
    doc("command|getkeysandflags", "Extracts the key names from a full command line, with each key's access flags", "O(N), N being the number of arguments of the command line."),
    doc("command|help", "Lists the COMMAND subcommands with a short usage note", "O(1)"),
    doc("command|info", "Describes the given commands, or every command", "O(N), N being the number of commands asked for.").history(&[("7.0.0", "Without arguments, every command is described.")]),
    doc("command|list", "Lists command names, optionally filtered by module, ACL category or pattern", "O(N), N being the number of commands."),
    doc("config", "Commands about the server configuration", "Varies with the subcommand."),
    doc("config|get", "Returns the configuration parameters whose names match patterns", "O(N), N being the number of parameters asked for.").history(&[("7.0.0", "Several patterns can be given at once.")]),
    doc("config|help", "Lists the CONFIG subcommands with a short usage note", "O(1)"),
    doc("config|resetstat", "Clears the server's statistics counters", "O(1)"),
    doc("config|rewrite", "Writes the running configuration back to the config file", "O(1)"),
    doc("config|set", "Changes configuration parameters at run time", "O(N), N being the number of parameters given.").history(&[("7.0.0", "Several parameters can be set at once.")]),
    doc("copy", "Copies a key's value to another key", "O(1) for strings; O(N) for collections, N being the number of nested items."),
    doc("dbsize", "Counts the keys of the selected database", "O(1)"),
    doc("debug", "Debugging and testing commands", "Varies with the subcommand.").syscmd(),
    doc("decr", "Subtracts one from the integer stored at a key", "O(1)"),
    doc("decrby", "Subtracts a given amount from the integer stored at a key", "O(1)"),
    doc("del", "Removes keys", "O(N), N being the number of keys removed; a collection key costs O(M) more, M being its number of elements, while a string key costs O(1)."),
    doc("discard", "Drops the commands queued since MULTI and leaves the transaction", "O(N), N being the number of queued commands."),
    doc("dump", "Serializes a key's value in the RDB format that RESTORE accepts", "O(1) to find the key, plus O(N*M) to serialize it, N being the number of objects in the value and M their mean size; a short string is thus O(1)."),
    doc("echo", "Returns its argument", "O(1)"),
    doc("eval", "Runs a Lua script", "Varies with the script."),
    doc("eval_ro", "Runs a Lua script that may only read", "Varies with the script."),
    doc("evalsha", "Runs a cached Lua script named by its SHA1 digest", "Varies with the script."),
    doc("evalsha_ro", "Runs a cached read-only Lua script named by its SHA1 digest", "Varies with the script."),
    doc("exec", "Runs the commands queued since MULTI, all at once", "Varies with the queued commands."),
    doc("exists", "Counts how many of the given keys exist", "O(N), N being the number of keys given.").history(&[("3.0.3", "Several keys can be given.")]),
    doc("expire", "Makes a key expire after a number of seconds", "O(1)").history(&[("7.0.0", "The `NX`, `XX`, `GT` and `LT` conditions.")]),
    doc("expireat", "Sets the moment a key expires, as a Unix time in seconds", "O(1)").history(&[("7.0.0", "The `NX`, `XX`, `GT` and `LT` conditions.")]),
    doc("expiretime", "Returns the moment a key expires, as a Unix time in seconds", "O(1)"),
    doc("failover", "Hands the primary role to one of this server's replicas", "O(1)"),
    doc("fcall", "Runs a function", "Varies with the function."),
    doc("fcall_ro", "Runs a function that may only read", "Varies with the function."),
    doc("flushall", "Removes every key of every database", "O(N), N being the number of keys in all databases.").history(&[("4.0.0", "The `ASYNC` mode."), ("6.2.0", "The `SYNC` mode.")]),
    doc("flushdb", "Removes every key of the selected database", "O(N), N being the number of keys in the database.").history(&[("4.0.0", "The `ASYNC` mode."), ("6.2.0", "The `SYNC` mode.")]),
    doc("function", "Commands about function libraries", "Varies with the subcommand."),
    doc("function|delete", "Removes a function library", "O(1)"),
    doc("function|dump", "Serializes every function library, for FUNCTION RESTORE", "O(N), N being the number of functions."),
    doc("function|flush", "Removes every function library", "O(N), N being the number of functions removed."),
    doc("function|help", "Lists the FUNCTION subcommands with a short usage note", "O(1)"),
    doc("function|kill", "Stops the function that is running, when it has not written", "O(1)"),
    doc("function|list", "Describes the function libraries and their functions", "O(N), N being the number of functions."),
    doc("function|load", "Loads a function library from its source", "O(1), compilation aside."),
    doc("function|restore", "Loads function libraries from a FUNCTION DUMP payload", "O(N), N being the number of functions in the payload."),
    doc("function|stats", "Describes the running function and the engines", "O(1)"),
    doc("geoadd", "Adds places, by longitude and latitude, to a geospatial index", "O(log(N)) per place added, N being the size of the sorted set.").history(&[("6.2.0", "The `CH`, `NX` and `XX` options.")]),
    doc("geodist", "Measures how far apart two places of a geospatial index are", "O(log(N))"),
    doc("geohash", "Returns the geohash strings of places of a geospatial index", "O(log(N)) per place asked for, N being the size of the sorted set."),
    doc("geopos", "Gives the coordinates (longitude, latitude) stored for places of a geospatial index", "O(N), N being the number of places asked for."),
    doc("georadius", "Finds the places of a geospatial index within a radius of a point, optionally storing them", "O(N+log(M)), N being the number of places in the box that bounds the circle and M the size of the index.").deprecated("6.2.0", "`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` argument").history(&[("6.2.0", "`ANY` with `COUNT`."), ("7.0.0", "Units may be given in upper case.")]),
    doc("georadius_ro", "Finds the places of a geospatial index within a radius of a point (read-only GEORADIUS)", "O(N+log(M)), N being the number of places in the box that bounds the circle and M the size of the index.").deprecated("6.2.0", "`GEOSEARCH` with the `BYRADIUS` argument").history(&[("6.2.0", "`ANY` with `COUNT`.")]),
    doc("georadiusbymember", "Finds the places of a geospatial index within a radius of one of its members, optionally storing them", "O(N+log(M)), N being the number of places in the box that bounds the circle and M the size of the index.").deprecated("6.2.0", "`GEOSEARCH` and `GEOSEARCHSTORE` with the `BYRADIUS` and `FROMMEMBER` arguments").history(&[("7.0.0", "Units may be given in upper case.")]),
    doc("georadiusbymember_ro", "Finds the places of a geospatial index within a radius of one of its members (read-only GEORADIUSBYMEMBER)", "O(N+log(M)), N being the number of places in the box that bounds the circle and M the size of the index.").deprecated("6.2.0", "`GEOSEARCH` with the `BYRADIUS` and `FROMMEMBER` arguments"),
    doc("geosearch", "Finds the places of a geospatial index inside a circle or a box", "O(N+log(M)), N being the number of places in the grid-aligned box around the shape and M the number of places in the shape.").history(&[("7.0.0", "Units may be given in upper case.")]),
    doc("geosearchstore", "Finds the places of a geospatial index inside a circle or a box and stores them", "O(N+log(M)), N being the number of places in the grid-aligned box around the shape and M the number of places in the shape.").history(&[("7.0.0", "Units may be given in upper case.")]),
    doc("get", "Returns the string stored at a key", "O(1)"),
    doc("getbit", "Returns one bit of the string stored at a key", "O(1)"),
    doc("getdel", "Returns the string stored at a key and removes the key", "O(1)"),
    doc("getex", "Returns the string stored at a key and changes or removes its expiry", "O(1)"),
    doc("getrange", "Returns the bytes of a string between two offsets", "O(N), N being the length of the part returned; short parts are in effect O(1)."),
    doc("getset", "Stores a string at a key and returns the string it replaced", "O(1)").deprecated("6.2.0", "`SET` with the `!GET` argument"),
    doc("hdel", "Removes fields from a hash", "O(N), N being the number of fields given.").history(&[("2.4.0", "Several fields can be given.")]),
    doc("hello", "Chooses the protocol version, optionally authenticates and names the connection, and describes the server", "O(1)").history(&[("6.2.0", "`protover` can be left out, to describe the connection as it is.")]),
    doc("hexists", "Tells whether a hash has a field", "O(1)"),
    doc("hget", "Reads one field of a hash", "O(1)"),
    doc("hgetall", "Returns every field and value of a hash", "O(N), N being the size of the hash."),
    doc("hincrby", "Adds an integer to the integer in a hash field", "O(1)"),
    doc("hincrbyfloat", "Adds a floating-point number to the number in a hash field", "O(1)"),
    doc("hkeys", "Returns the fields of a hash", "O(N), N being the size of the hash."),
    doc("hlen", "Counts the fields of a hash", "O(1)"),
    doc("hmget", "Returns the values of several hash fields", "O(N), N being the number of fields asked for."),
    doc("hmset", "Sets several hash fields", "O(N), N being the number of fields set.").deprecated("4.0.0", "`HSET` with multiple field-value pairs"),
    doc("hrandfield", "Returns random fields of a hash, optionally with their values", "O(N), N being the number of fields returned."),
    doc("hscan", "Walks the fields and values of a hash, a few per call", "O(1) per call; O(N) for a whole walk back to cursor 0, N being the size of the hash."),
    doc("hset", "Sets hash fields, creating the hash when missing", "O(1) per field set, so O(N) for N fields.").history(&[("4.0.0", "Several field/value pairs can be given.")]),
    doc("hsetnx", "Sets a hash field only when it does not exist", "O(1)"),
    doc("hstrlen", "Measures the string stored in one hash field", "O(1)"),
    doc("hvals", "Returns the values of a hash", "O(N), N being the size of the hash."),
    doc("incr", "Adds one to the integer stored at a key", "O(1)"),
    doc("incrby", "Adds a given integer to the integer stored at a key", "O(1)"),
    doc("incrbyfloat", "Adds a floating-point number to the number stored at a key", "O(1)"),
    doc("info", "Reports the server's state and statistics, by section", "O(1)").history(&[("7.0.0", "Several sections can be given.")]),
    doc("keys", "Returns the key names that match a pattern", "O(N), N being the number of keys in the database, for names and patterns of modest length."),
    doc("lastsave", "Returns the Unix time of the last successful snapshot", "O(1)"),
    doc("latency", "Commands about latency monitoring", "Varies with the subcommand."),
    doc("latency|doctor", "Analyses the latency events in plain language", "O(1)"),
    doc("latency|graph", "Draws an ASCII graph of one latency event's samples", "O(1)"),
    doc("latency|help", "Lists the LATENCY subcommands with a short usage note", "O(1)"),
    doc("latency|histogram", "Returns per-command latency histograms", "O(N), N being the number of commands reported."),
    doc("latency|history", "Returns the samples recorded for one latency event", "O(1)"),
    doc("latency|latest", "Returns the latest sample of each latency event", "O(1)"),
    doc("latency|reset", "Clears latency event samples", "O(1)"),
    doc("lcs", "Finds the longest common subsequence of two strings", "O(N*M), N and M being the lengths of the two strings."),
    doc("lindex", "Returns the list element at an index", "O(N), N being the number of elements walked to reach the index; the first and last elements are O(1)."),
    doc("linsert", "Puts an element next to a pivot element of a list, on either side", "O(N), N being the number of elements walked before the pivot; near the head it is O(1), near the tail O(N)."),
    doc("llen", "Counts the elements of a list", "O(1)"),
    doc("lmove", "Moves an element from one end of a list to an end of another", "O(1)"),
    doc("lmpop", "Pops elements from the first non-empty list among several", "O(N+M), N being the number of keys given and M the number of elements popped."),
    doc("lpop", "Takes elements off the head of a list", "O(N), N being the number of elements returned.").history(&[("6.2.0", "The `count` argument.")]),
    doc("lpos", "Returns the indexes of the list elements equal to a value", "O(N) on average, N being the length of the list; close to either end, or with MAXLEN, it can be constant."),
    doc("lpush", "Adds elements to the head of a list, creating it when missing", "O(1) per element, so O(N) for N elements.").history(&[("2.4.0", "Several elements can be given.")]),
    doc("lpushx", "Adds elements to the head of a list, only when the list exists", "O(1) per element, so O(N) for N elements.").history(&[("4.0.0", "Several elements can be given.")]),
    doc("lrange", "Returns a range of list elements", "O(S+N), S being the distance of the start from the head (or, for large lists, from the nearer end) and N the number of elements returned."),
    doc("lrem", "Removes list elements equal to a value", "O(N+M), N being the length of the list and M the number of elements removed."),
    doc("lset", "Replaces the list element at an index", "O(N), N being the length of the list; the first and last elements are O(1)."),
    doc("ltrim", "Keeps only a range of a list's elements", "O(N), N being the number of elements removed."),
    doc("memory", "Commands about memory use", "Varies with the subcommand."),
    doc("memory|doctor", "Analyses memory use in plain language", "O(1)"),
    doc("memory|help", "Lists the MEMORY subcommands with a short usage note", "O(1)"),
    doc("memory|malloc-stats", "Returns the memory allocator's own statistics", "Varies with how much memory is allocated; it can be slow."),
    doc("memory|purge", "Asks the memory allocator to give unused memory back", "Varies with how much memory is allocated; it can be slow."),
    doc("memory|stats", "Reports memory use in detail", "O(1)"),
    doc("memory|usage", "Estimates the memory a key and its value take", "O(N), N being the number of samples."),
    doc("mget", "Returns the strings stored at several keys", "O(N), N being the number of keys."),
    doc("migrate", "Moves keys to another Redis server, atomically per call", "A DUMP and DEL here and a RESTORE on the target (see their costs), plus an O(N) transfer between the servers.").history(&[("3.0.0", "The `COPY` and `REPLACE` options."), ("3.0.6", "The `KEYS` option, to move several keys at once."), ("4.0.7", "The `AUTH` option."), ("6.0.0", "The `AUTH2` option, with a user name.")]),
    doc_without_complexity("monitor", "Streams every command the server runs, as it runs them"),
    doc("move", "Transfers a key from the selected database to another one", "O(1)"),
    doc("mset", "Stores strings at several keys", "O(N), N being the number of keys."),
    doc("msetnx", "Stores strings at several keys, only when none of them exists", "O(N), N being the number of keys."),
    doc("multi", "Starts a transaction: the commands that follow are queued until EXEC", "O(1)"),
    doc("object", "Commands about the values behind keys", "Varies with the subcommand."),
    doc("object|encoding", "Returns the internal encoding of a key's value", "O(1)"),
    doc("object|freq", "Returns the access frequency counter of a key (LFU eviction policies)", "O(1)"),
    doc("object|help", "Lists the OBJECT subcommands with a short usage note", "O(1)"),
    doc("object|idletime", "Returns how long, in seconds, a key has not been accessed", "O(1)"),
    doc("object|refcount", "Returns the reference count of a key's value", "O(1)"),
    doc("persist", "Removes a key's expiry, so it no longer expires", "O(1)"),
    doc("pexpire", "Makes a key expire after a number of milliseconds", "O(1)").history(&[("7.0.0", "The `NX`, `XX`, `GT` and `LT` conditions.")]),
    doc("pexpireat", "Sets the moment a key expires, as a Unix time in milliseconds", "O(1)").history(&[("7.0.0", "The `NX`, `XX`, `GT` and `LT` conditions.")]),
    doc("pexpiretime", "Returns the moment a key expires, as a Unix time in milliseconds", "O(1)"),
    doc("pfadd", "Adds elements to a HyperLogLog", "O(1) per element."),
    doc("pfcount", "Estimates the number of distinct elements seen by HyperLogLogs", "O(1), with a small constant, for one key; O(N) with a much larger constant for N keys."),
    doc("pfdebug", "Internal HyperLogLog inspection, for debugging", "Not applicable.").syscmd(),
    doc("pfmerge", "Merges HyperLogLogs into one", "O(N) for N HyperLogLogs, with a large constant."),
    doc("pfselftest", "Internal HyperLogLog self test", "Not applicable.").syscmd(),
    doc("ping", "Checks the connection: replies PONG, or its argument", "O(1)"),
    doc("psetex", "Stores a string at a key with a time to live in milliseconds", "O(1)"),
    doc("psubscribe", "Subscribes the connection to channels matching patterns", "O(N), N being the number of patterns the client already has."),
    doc_without_complexity("psync", "Starts replication from a primary, resuming from an offset when it can (internal)"),
    doc("pttl", "Returns a key's remaining time to live in milliseconds", "O(1)").history(&[("2.8.0", "A missing key replies -2.")]),
    doc("publish", "Sends a message to a channel's subscribers", "O(N+M), N being the number of subscribers of the channel and M the number of subscribed patterns."),
    doc("pubsub", "Commands about the state of Pub/Sub", "Varies with the subcommand."),
    doc("pubsub|channels", "Lists the channels that have subscribers, optionally matching a pattern", "O(N), N being the number of active channels, for short channels and patterns."),
    doc("pubsub|help", "Lists the PUBSUB subcommands with a short usage note", "O(1)"),
    doc("pubsub|numpat", "Counts the subscribed patterns", "O(1)"),
    doc("pubsub|numsub", "Tells how many clients listen to each channel given", "O(N), N being the number of channels given."),
    doc("pubsub|shardchannels", "Lists the shard channels that have subscribers, optionally matching a pattern", "O(N), N being the number of active shard channels, for short names and patterns."),
    doc("pubsub|shardnumsub", "Tells how many clients listen to each shard channel given", "O(N), N being the number of shard channels given."),
    doc("punsubscribe", "Ends the connection's subscriptions to patterns", "O(N+M), N being the number of patterns the client has and M the number of subscribed patterns overall."),
    doc("quit", "Asks the server to hang up once it has replied", "O(1)"),
    doc("randomkey", "Returns a random key name", "O(1)"),
    doc("readonly", "Lets the connection read keys from a cluster replica", "O(1)"),
    doc("readwrite", "Ends READONLY: reads go to primaries again", "O(1)"),
    doc("rename", "Gives a key a new name, replacing any key of that name", "O(1)"),
    doc("renamenx", "Gives a key a new name, only when that name is free", "O(1)").history(&[("3.2.0", "Renaming a key to its own name is no longer an error.")]),
    doc("replconf", "Exchanges replication settings between a replica and its primary (internal)", "O(1)").syscmd(),
    doc("replicaof", "Makes the server a replica of another, or a primary again", "O(1)"),
    doc("reset", "Brings the connection back to its initial state", "O(1)"),
    doc("restore", "Creates a key from a value serialized by DUMP", "O(1) to create the key, plus O(N*M) to rebuild the value, N being the number of objects in it and M their mean size (O(N*M*log(N)) for sorted sets); a short string is thus O(1).").history(&[("3.0.0", "The `REPLACE` option."), ("5.0.0", "The `ABSTTL` option."), ("5.0.0", "The `IDLETIME` and `FREQ` options.")]),
    doc("restore-asking", "Creates a key from a serialized value during a cluster migration (internal)", "O(1) to create the key, plus O(N*M) to rebuild the value, N being the number of objects in it and M their mean size (O(N*M*log(N)) for sorted sets); a short string is thus O(1).").syscmd().history(&[("3.0.0", "The `REPLACE` option."), ("5.0.0", "The `ABSTTL` option."), ("5.0.0", "The `IDLETIME` and `FREQ` options.")]),
    doc("role", "Tells whether the server is a primary or a replica, with replication details", "O(1)"),
    doc("rpop", "Takes elements off the tail of a list", "O(N), N being the number of elements returned.").history(&[("6.2.0", "The `count` argument.")]),
    doc("rpoplpush", "Moves the last element of a list to the head of another", "O(1)").deprecated("6.2.0", "`LMOVE` with the `RIGHT` and `LEFT` arguments"),
    doc("rpush", "Adds elements to the tail of a list, creating it when missing", "O(1) per element, so O(N) for N elements.").history(&[("2.4.0", "Several elements can be given.")]),
    doc("rpushx", "Adds elements to the tail of a list, only when the list exists", "O(1) per element, so O(N) for N elements.").history(&[("4.0.0", "Several elements can be given.")]),
    doc("sadd", "Adds members to a set, creating it when missing", "O(1) per member, so O(N) for N members.").history(&[("2.4.0", "Several members can be given.")]),
    doc("save", "Writes a snapshot of the data set to disk, blocking until done", "O(N), N being the number of keys in all databases."),
    doc("scan", "Walks the key names of the database, a few per call", "O(1) per call; O(N) for a whole walk back to cursor 0, N being the number of keys.").history(&[("6.0.0", "The `TYPE` filter.")]),
    doc("scard", "Counts the members of a set", "O(1)"),
    doc("script", "Commands about the Lua script cache", "Varies with the subcommand."),
    doc("script|exists", "Tells which scripts, by SHA1 digest, are in the script cache", "O(N), N being the number of digests given (one digest is O(1))."),
    doc("script|flush", "Empties the script cache", "O(N), N being the number of cached scripts.").history(&[("6.2.0", "The `ASYNC` and `SYNC` modes.")]),
    doc("script|help", "Lists the SCRIPT subcommands with a short usage note", "O(1)"),
    doc("script|kill", "Stops the script that is running, when it has not written", "O(1)"),
    doc("script|load", "Puts a script in the script cache without running it", "O(N), N being the length of the script in bytes."),
    doc("sdiff", "Returns the members of a set that are in none of the other sets given", "O(N), N being the total size of the sets given."),
    doc("sdiffstore", "Stores the members of a set that are in none of the other sets given", "O(N), N being the total size of the sets given."),
    doc("select", "Chooses the database the connection works on", "O(1)"),
    doc("set", "Stores a string at a key, with options for expiry and conditions", "O(1)").history(&[("2.6.12", "The `EX`, `PX`, `NX` and `XX` options."), ("6.0.0", "The `KEEPTTL` option."), ("6.2.0", "The `GET`, `EXAT` and `PXAT` options."), ("7.0.0", "`NX` and `GET` can be combined.")]),
    doc("setbit", "Writes a 0 or a 1 at a bit offset of a string, growing it when needed", "O(1)"),
    doc("setex", "Stores a string at a key with a time to live in seconds", "O(1)"),
    doc("setnx", "Stores a string at a key only when the key does not exist", "O(1)"),
    doc("setrange", "Overwrites part of the string stored at a key, from an offset", "O(1) besides copying the new bytes in, which is O(M) for a value of length M."),
    doc("shutdown", "Stops the server, saving first when configured", "O(N) when saving, N being the number of keys in all databases; O(1) otherwise.").history(&[("7.0.0", "The `NOW`, `FORCE` and `ABORT` options.")]),
    doc("sinter", "Returns the members common to several sets", "O(N*M) at worst, N being the size of the smallest set and M the number of sets."),
    doc("sintercard", "Counts the members common to several sets", "O(N*M) at worst, N being the size of the smallest set and M the number of sets."),
    doc("sinterstore", "Stores the members common to several sets", "O(N*M) at worst, N being the size of the smallest set and M the number of sets."),
    doc("sismember", "Tells whether a value is a member of a set", "O(1)"),
    doc("slaveof", "Makes the server a replica of another, or a primary again (old name of REPLICAOF)", "O(1)").deprecated("5.0.0", "`REPLICAOF`"),
    doc("slowlog", "Commands about the slow log", "Varies with the subcommand."),
    doc("slowlog|get", "Returns the newest slow log entries", "O(N), N being the number of entries returned.").history(&[("4.0.0", "Entries carry the client's address and name.")]),
    doc("slowlog|help", "Lists the SLOWLOG subcommands with a short usage note", "O(1)"),
    doc("slowlog|len", "Counts the slow log entries", "O(1)"),
    doc("slowlog|reset", "Empties the slow log", "O(N), N being the number of entries."),
    doc("smembers", "Returns every member of a set", "O(N), N being the size of the set."),
    doc("smismember", "Tells, for each value given, whether it is a member of a set", "O(N), N being the number of values given."),
    doc("smove", "Transfers a member from one set to another set", "O(1)"),
    doc("sort", "Sorts the elements of a list, set or sorted set, optionally storing the result", "O(N+M*log(M)), N being the number of elements to sort and M the number returned; O(N) when not sorting."),
    doc("sort_ro", "The form of SORT that never stores: sorts a list, set or sorted set and returns the result", "O(N+M*log(M)), N being the number of elements to sort and M the number returned; O(N) when not sorting."),
    doc("spop", "Removes and returns random members of a set", "O(1) without a count; otherwise O(N), N being the count.").history(&[("3.2.0", "The `count` argument.")]),
    doc("spublish", "Sends a message to a shard channel's subscribers", "O(N), N being the number of subscribers of the shard channel."),
    doc("srandmember", "Returns random members of a set without removing them", "O(1) without a count; otherwise O(N), N being the absolute value of the count.").history(&[("2.6.0", "The `count` argument.")]),
    doc("srem", "Removes members from a set", "O(N), N being the number of members given.").history(&[("2.4.0", "Several members can be given.")]),
    doc("sscan", "Walks the members of a set, a few per call", "O(1) per call; O(N) for a whole walk back to cursor 0, N being the size of the set."),
    doc("ssubscribe", "Subscribes the connection to shard channels", "O(N), N being the number of shard channels given."),
    doc("strlen", "Returns the length of the string stored at a key", "O(1)"),
    doc("subscribe", "Subscribes the connection to channels", "O(N), N being the number of channels given."),
    doc("substr", "Returns part of the string stored at a key (old name of GETRANGE)", "O(N), N being the length of the part returned; short parts are in effect O(1).").deprecated("2.0.0", "`GETRANGE`"),
    doc("sunion", "Returns the members of all the sets given", "O(N), N being the total size of the sets given."),
    doc("sunionstore", "Stores the members of all the sets given", "O(N), N being the total size of the sets given."),
    doc("sunsubscribe", "Ends the connection's subscriptions to shard channels", "O(N), N being the number of subscribers of the shard channel."),
    doc("swapdb", "Exchanges the contents of two databases", "O(N), N being the number of clients watching or blocked on keys of either database."),
    doc_without_complexity("sync", "Starts a full replication from a primary (internal)"),
    doc("time", "Returns the server's clock: Unix seconds and microseconds", "O(1)"),
    doc("touch", "Updates the last access time of keys, counting those that exist", "O(N), N being the number of keys given."),
    doc("ttl", "Returns a key's remaining time to live in seconds", "O(1)").history(&[("2.8.0", "A missing key replies -2.")]),
    doc("type", "Returns the type of the value stored at a key", "O(1)"),
    doc("unlink", "Removes keys, freeing their memory in the background", "O(1) per key whatever its size, then O(N) background work to free it, N being the number of allocations the value used."),
    doc("unsubscribe", "Ends the connection's subscriptions to channels", "O(N), N being the number of subscribers of the channel."),
    doc("unwatch", "Forgets every key WATCHed by the connection", "O(1)"),
    doc("wait", "Waits until earlier writes reach a number of replicas, or a timeout", "O(1)"),
    doc("watch", "Watches keys so that EXEC fails if they change first", "O(1) per key."),
    doc("xack", "Marks stream entries as processed by a consumer group", "O(1) per entry id given."),
    doc("xadd", "Appends an entry to a stream, creating it when missing", "O(1) to add; O(N) when trimming, N being the number of entries removed.").history(&[("6.2.0", "The `NOMKSTREAM` option, `MINID` trimming and the `LIMIT` option."), ("7.0.0", "Ids can be given as `<ms>-*`.")]),
    doc("xautoclaim", "Hands pending entries idle for long enough to another consumer, walking the pending list", "O(1) for a small COUNT.").history(&[("7.0.0", "The reply also lists the ids of deleted entries removed from the pending list.")]),
    doc("xclaim", "Hands given pending entries to another consumer", "O(log N), N being the number of entries in the group's pending list."),
    doc("xdel", "Removes entries from a stream", "O(1) per entry, whatever the size of the stream."),
    doc("xgroup", "Commands about stream consumer groups", "Varies with the subcommand."),
    doc("xgroup|create", "Creates a consumer group on a stream", "O(1)").history(&[("7.0.0", "The `entries_read` argument.")]),
    doc("xgroup|createconsumer", "Adds a named consumer to a stream's consumer group", "O(1)"),
    doc("xgroup|delconsumer", "Drops a consumer from a stream's consumer group, with its pending entries", "O(1)"),
    doc("xgroup|destroy", "Removes a consumer group", "O(N), N being the number of entries in the group's pending list."),
    doc("xgroup|help", "Lists the XGROUP subcommands with a short usage note", "O(1)"),
    doc("xgroup|setid", "Moves a consumer group's last-delivered id", "O(1)").history(&[("7.0.0", "The `entries_read` argument.")]),
    doc("xinfo", "Commands describing streams and their groups", "Varies with the subcommand."),
    doc("xinfo|consumers", "Reports each consumer of a stream's group: pending count and idle times", "O(1)"),
    doc("xinfo|groups", "Reports, group by group, how a stream is being consumed", "O(1)").history(&[("7.0.0", "The `entries-read` and `lag` fields.")]),
    doc("xinfo|help", "Lists the XINFO subcommands with a short usage note", "O(1)"),
    doc("xinfo|stream", "Describes a stream", "O(1)").history(&[("6.0.0", "The `FULL` option."), ("7.0.0", "The `max-deleted-entry-id`, `entries-added`, `recorded-first-entry-id`, `entries-read` and `lag` fields.")]),
    doc("xlen", "Counts the entries of a stream", "O(1)"),
    doc("xpending", "Describes the pending entries of a consumer group, as a summary or entry by entry", "O(N), N being the number of entries returned (constant for a small fixed count); O(M) with IDLE, M being the entries scanned; the summary is O(1) for few consumers, plus O(N) over the consumers otherwise.").history(&[("6.2.0", "The `IDLE` filter, and exclusive range ends.")]),
    doc("xrange", "Returns the stream entries within a range of ids", "O(N), N being the number of entries returned (constant for a fixed COUNT).").history(&[("6.2.0", "Exclusive range ends.")]),
    doc("xread", "Reads entries from streams after given ids, optionally waiting for new ones", "O(N) per stream, N being the number of entries returned (constant for a fixed COUNT); with BLOCK, each XADD pays O(M) to serve the M clients waiting."),
    doc("xreadgroup", "Reads entries from streams as a consumer of a group, optionally waiting for new ones", "O(M) per stream, M being the number of entries returned (constant for a fixed COUNT); when it blocks, each XADD pays O(N) to serve the N clients waiting."),
    doc("xrevrange", "Returns the stream entries within a range of ids, newest first", "O(N), N being the number of entries returned (constant for a fixed COUNT).").history(&[("6.2.0", "Exclusive range ends.")]),
    doc("xsetid", "Sets a stream's last id and counters (used by replication)", "O(1)").history(&[("7.0.0", "The `entries_added` and `max_deleted_entry_id` arguments.")]),
    doc("xtrim", "Removes a stream's oldest entries down to a length or an id", "O(N), N being the number of entries removed, with a small constant since entries are freed node by node.").history(&[("6.2.0", "`MINID` trimming and the `LIMIT` option.")]),
    doc("zadd", "Adds members with scores to a sorted set, or updates their scores", "O(log(N)) per member, N being the size of the sorted set.").history(&[("2.4.0", "Several members can be given."), ("3.0.2", "The `XX`, `NX`, `CH` and `INCR` options."), ("6.2.0", "The `GT` and `LT` options.")]),
    doc("zcard", "Counts the members of a sorted set", "O(1)"),
    doc("zcount", "Counts the members of a sorted set within a range of scores", "O(log(N)), N being the size of the sorted set."),
    doc("zdiff", "Returns the members of a sorted set that are in none of the other sorted sets given", "O(L + (N-K)log(N)) at worst, L being the total size of the sets, N the size of the first and K the size of the result."),
    doc("zdiffstore", "Stores the members of a sorted set that are in none of the other sorted sets given", "O(L + (N-K)log(N)) at worst, L being the total size of the sets, N the size of the first and K the size of the result."),
    doc("zincrby", "Adds to the score of a sorted set member", "O(log(N)), N being the size of the sorted set."),
    doc("zinter", "Returns the members common to several sorted sets, with combined scores", "O(N*K)+O(M*log(M)) at worst, N being the size of the smallest set, K the number of sets and M the size of the result."),
    doc("zintercard", "Counts the members common to several sorted sets", "O(N*K) at worst, N being the size of the smallest set and K the number of sets."),
    doc("zinterstore", "Stores the members common to several sorted sets, with combined scores", "O(N*K)+O(M*log(M)) at worst, N being the size of the smallest set, K the number of sets and M the size of the result."),
    doc("zlexcount", "Counts the members of a sorted set within a lexicographical range", "O(log(N)), N being the size of the sorted set."),
    doc("zmpop", "Pops members by score from the first non-empty sorted set among several", "O(K) + O(M*log(N)): K keys given, M members popped, N members in the sorted set."),
    doc("zmscore", "Returns the scores of several sorted set members", "O(N), N being the number of members asked for."),
    doc("zpopmax", "Removes and returns the highest-scored members of a sorted set", "O(log(N)*M), N being the size of the sorted set and M the number of members popped."),
    doc("zpopmin", "Removes and returns the lowest-scored members of a sorted set", "O(log(N)*M), N being the size of the sorted set and M the number of members popped."),
    doc("zrandmember", "Returns random members of a sorted set, optionally with their scores", "O(N), N being the number of members returned."),
    doc("zrange", "Returns a range of sorted set members, by rank, score or lexicographical order", "O(log(N)+M), N being the size of the sorted set and M the number of members returned.").history(&[("6.2.0", "The `REV`, `BYSCORE`, `BYLEX` and `LIMIT` options.")]),
    doc("zrangebylex", "Returns the sorted set members within a lexicographical range", "O(log(N)+M), N being the size of the sorted set and M the number of members returned (so O(log(N)) for a fixed LIMIT).").deprecated("6.2.0", "`ZRANGE` with the `BYLEX` argument"),
    doc("zrangebyscore", "Returns the sorted set members within a range of scores", "O(log(N)+M), N being the size of the sorted set and M the number of members returned (so O(log(N)) for a fixed LIMIT).").deprecated("6.2.0", "`ZRANGE` with the `BYSCORE` argument").history(&[("2.0.0", "The `WITHSCORES` option.")]),
    doc("zrangestore", "Stores a range of sorted set members, by rank, score or lexicographical order", "O(log(N)+M), N being the size of the sorted set and M the number of members stored."),
    doc("zrank", "Returns the rank of a sorted set member, lowest score first", "O(log(N))"),
    doc("zrem", "Deletes the given members of a sorted set", "O(M*log(N)), N being the size of the sorted set and M the number of members removed.").history(&[("2.4.0", "Several members can be given.")]),
    doc("zremrangebylex", "Removes the sorted set members within a lexicographical range", "O(log(N)+M), N being the size of the sorted set and M the number of members removed."),
    doc("zremrangebyrank", "Removes the sorted set members within a range of ranks", "O(log(N)+M), N being the size of the sorted set and M the number of members removed."),
    doc("zremrangebyscore", "Removes the sorted set members within a range of scores", "O(log(N)+M), N being the size of the sorted set and M the number of members removed."),
    doc("zrevrange", "Returns a range of sorted set members by rank, highest score first", "O(log(N)+M), N being the size of the sorted set and M the number of members returned.").deprecated("6.2.0", "`ZRANGE` with the `REV` argument"),
    doc("zrevrangebylex", "Returns the sorted set members within a lexicographical range, in reverse order", "O(log(N)+M), N being the size of the sorted set and M the number of members returned (so O(log(N)) for a fixed LIMIT).").deprecated("6.2.0", "`ZRANGE` with the `REV` and `BYLEX` arguments"),
    doc("zrevrangebyscore", "Returns the sorted set members within a range of scores, highest first", "O(log(N)+M), N being the size of the sorted set and M the number of members returned (so O(log(N)) for a fixed LIMIT).").deprecated("6.2.0", "`ZRANGE` with the `REV` and `BYSCORE` arguments").history(&[("2.1.6", "The `min` and `max` bounds accept `(` for an open end.")]),
    doc("zrevrank", "Returns the rank of a sorted set member, highest score first", "O(log(N))"),
    doc("zscan", "Walks the members and scores of a sorted set, a few per call", "O(1) per call; O(N) for a whole walk back to cursor 0, N being the size of the sorted set."),
    doc("zscore", "Returns the score of a sorted set member", "O(1)"),
    doc("zunion", "Returns the members of all the sorted sets given, with combined scores", "O(N)+O(M*log(M)), N being the total size of the sets and M the size of the result."),
    doc("zunionstore", "Stores the members of all the sorted sets given, with combined scores", "O(N)+O(M*log(M)), N being the total size of the sets and M the size of the result."),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, REGISTRY};

    /// Commands Redis 7.0 documents without a complexity.
    const NO_COMPLEXITY: &[&str] = &["monitor", "psync", "sync"];

    fn every_command() -> Vec<&'static Command> {
        REGISTRY
            .commands()
            .iter()
            .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
            .collect()
    }

    #[test]
    fn entries_are_sorted_and_unique_so_lookups_can_bisect() {
        assert!(DOCS.windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn every_implemented_command_has_a_summary_and_a_complexity() {
        for cmd in every_command() {
            let doc = lookup(&cmd.name).unwrap_or_else(|| panic!("{} has no docs", cmd.name));
            assert!(!doc.summary.trim().is_empty(), "{}", cmd.name);
            let complexity = doc.complexity.unwrap_or_default();
            assert_eq!(
                complexity.trim().is_empty(),
                NO_COMPLEXITY.contains(&doc.name),
                "{}",
                cmd.name
            );
            assert!(doc
                .history
                .iter()
                .all(|(v, t)| !v.is_empty() && !t.is_empty()));
        }
    }

    #[test]
    fn every_entry_documents_an_implemented_command() {
        let names: Vec<&str> = every_command().iter().map(|c| c.name.as_str()).collect();
        for doc in DOCS {
            assert!(names.contains(&doc.name), "{} is not implemented", doc.name);
        }
    }

    #[test]
    fn deprecated_entries_say_since_when_and_by_what() {
        for doc in DOCS {
            assert_eq!(
                doc.doc_flags.contains(&"deprecated"),
                doc.deprecated.is_some(),
                "{}",
                doc.name
            );
        }
        let getset = lookup("getset").expect("getset");
        assert_eq!(getset.deprecated.map(|d| d.0), Some("6.2.0"));
        assert_eq!(lookup("debug").map(|d| d.doc_flags), Some(&["syscmd"][..]));
    }
}
