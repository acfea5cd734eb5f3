//! Users from text: the ACL file (`aclfile`, ACL LOAD and ACL SAVE) and the `user` lines of
//! the configuration file, with Redis's validation and error messages.

use super::user::{has_spaces, RuleError, User};

/// Joins rules spread over several words into one selector: `(+get` `~k)` becomes
/// `(+get ~k)`. Err(index of the opening word) when a selector is not closed.
pub fn merge_selectors(words: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::with_capacity(words.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (i, w) in words.iter().enumerate() {
        if let Some((start, mut sel)) = open.take() {
            sel.push(b' ');
            sel.extend_from_slice(w);
            if w.last() == Some(&b')') {
                out.push(sel);
            } else {
                open = Some((start, sel));
            }
            continue;
        }
        if w.first() == Some(&b'(') && w.last() != Some(&b')') {
            open = Some((i, w.clone()));
            continue;
        }
        out.push(w.clone());
    }
    match open {
        Some((start, _)) => Err(start),
        None => Ok(out),
    }
}

/// Parses an ACL file. `name` is the file's name for messages. On any error nothing is
/// returned but Redis's one-line description of every problem.
pub fn parse(name: &str, text: &[u8], all_channels_default: bool) -> Result<Vec<User>, String> {
    let mut users: Vec<User> = Vec::new();
    let mut errors = String::new();
    for (i, line) in text.split(|&c| c == b'\n').enumerate() {
        let lineno = i + 1;
        let line = trim(line, b" \t\r\n");
        if line.is_empty() {
            continue;
        }
        let words: Vec<Vec<u8>> = line.split(|&c| c == b' ').map(<[u8]>::to_vec).collect();
        if words.first().map(Vec::as_slice) != Some(b"user") || words.len() < 2 {
            errors.push_str(&format!(
                "{name}:{lineno} should start with user keyword followed by the username. "
            ));
            continue;
        }
        let username = &words[1];
        if has_spaces(username) {
            errors.push_str(&format!(
                "'{name}:{lineno}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(username)
            ));
            continue;
        }
        if users.iter().any(|u| &u.name == username) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {lineno}. ",
                String::from_utf8_lossy(username)
            ));
            continue;
        }
        let mut user = User::new(username, all_channels_default);
        let rules = match merge_selectors(&words[2..]) {
            Ok(rules) => rules,
            Err(_) => {
                errors.push_str(&format!(
                    "{name}:{lineno}: Unmatched parenthesis in selector definition."
                ));
                Vec::new()
            }
        };
        let mut syntax_error = false;
        for rule in rules {
            let rule = trim(&rule, b"\t\r\n");
            match user.apply(rule, all_channels_default) {
                Ok(()) => {}
                Err(RuleError::UnknownCommand) => errors.push_str(&format!(
                    "{name}:{lineno}: Error in applying operation '{}': {}. ",
                    String::from_utf8_lossy(rule),
                    RuleError::UnknownCommand.message()
                )),
                Err(e) if !syntax_error => {
                    errors.push_str(&format!("{name}:{lineno}: {}. ", e.message()));
                    syntax_error = true;
                }
                Err(_) => {}
            }
        }
        users.push(user);
    }
    if !errors.is_empty() {
        errors.push_str(
            "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
        );
        return Err(errors);
    }
    Ok(users)
}

/// The file ACL SAVE writes: one `user` line per user, in name order.
pub fn render(users: &[&User]) -> Vec<u8> {
    let mut out = Vec::new();
    for u in users {
        out.extend_from_slice(b"user ");
        out.extend_from_slice(&u.name);
        out.push(b' ');
        out.extend_from_slice(&u.describe());
        out.push(b'\n');
    }
    out
}

/// Checks a `user <name> <rules...>` line of the configuration file (words after `user`).
/// Unknown commands are accepted here and refused at start-up, as Redis does.
pub fn check_config_line(words: &[Vec<u8>], all_channels_default: bool) -> Result<(), String> {
    let Some((name, rules)) = words.split_first() else {
        return Err("Error in user declaration 'user': Syntax error".into());
    };
    let rules = merge_selectors(rules).map_err(|i| {
        format!(
            "Error in user declaration '{}': Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(&rules[i])
        )
    })?;
    let mut probe = User::new(name, all_channels_default);
    for rule in &rules {
        match probe.apply(rule, all_channels_default) {
            Ok(()) | Err(RuleError::UnknownCommand) => {}
            Err(e) => {
                return Err(format!(
                    "Error in user declaration '{}': {}",
                    String::from_utf8_lossy(rule),
                    e.message()
                ))
            }
        }
    }
    Ok(())
}

/// Builds a user from a configuration `user` line at start-up (every rule must apply now).
pub fn user_from_config(words: &[Vec<u8>], all_channels_default: bool) -> Result<User, String> {
    let (name, rules) = words
        .split_first()
        .ok_or_else(|| "Spaces not allowed in ACL usernames".to_string())?;
    if has_spaces(name) {
        return Err("Spaces not allowed in ACL usernames".into());
    }
    let rules = merge_selectors(rules).map_err(|_| "Unmatched parenthesis".to_string())?;
    let mut user = User::new(name, all_channels_default);
    if name == b"default" {
        user.apply(b"reset", all_channels_default).ok();
    }
    for rule in &rules {
        user.apply(rule, all_channels_default).map_err(|e| {
            format!(
                "Error loading ACL rule '{}' for the user named '{}': {}",
                String::from_utf8_lossy(rule),
                String::from_utf8_lossy(name),
                e.message()
            )
        })?;
    }
    Ok(user)
}

fn trim<'a>(s: &'a [u8], set: &[u8]) -> &'a [u8] {
    let start = s.iter().position(|c| !set.contains(c)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !set.contains(c))
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<Vec<u8>> {
        s.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn selectors_spread_over_words_are_joined() {
        assert_eq!(
            merge_selectors(&words("on (+get ~a) (+set ~b ~c) off")),
            Ok(words("on")
                .into_iter()
                .chain([b"(+get ~a)".to_vec(), b"(+set ~b ~c)".to_vec()])
                .chain(words("off"))
                .collect())
        );
        assert_eq!(merge_selectors(&words("on (+get ~a")), Err(1));
    }

    #[test]
    fn acl_files_load_whole_or_not_at_all() {
        let ok = parse(
            "users.acl",
            b"user alice on allcommands allkeys &* >alice\n\n  user bob on -@all +@set +acl ~set* &* >bob \r\n",
            false,
        )
        .expect("valid");
        assert_eq!(ok.len(), 2);
        assert!(ok[0].password_matches(b"alice"));
        let bad = parse(
            "users.acl",
            b"user alice on +nosuch\nuser alice on\nfoo bar\nuser bob ~a allkeys ~b\n",
            false,
        )
        .expect_err("invalid");
        assert_eq!(
            bad,
            "users.acl:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. \
             WARNING: Duplicate user 'alice' found on line 2. \
             users.acl:3 should start with user keyword followed by the username. \
             users.acl:4: Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns. \
             WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
        );
        let saved = render(&ok.iter().collect::<Vec<_>>());
        let again = parse("x", &saved, false).expect("saved file loads");
        assert_eq!(again, ok);
    }

    #[test]
    fn config_lines_are_checked_then_applied() {
        assert!(check_config_line(&words("bob on +nosuch >x"), false).is_ok());
        assert!(check_config_line(&words("bob on ~a allkeys ~b"), false).is_err());
        assert!(user_from_config(&words("bob on +nosuch"), false).is_err());
        let u = user_from_config(&words("bob on >x ~* +@all"), false).expect("valid");
        assert!(u.enabled && u.password_matches(b"x"));
    }
}
