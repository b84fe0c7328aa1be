//! A reply on the control socket: one JSON object on one line, `{"ok":true,...}` or
//! `{"ok":false,"error":"..."}`.

use crate::report::json::write_string;

pub(crate) struct Reply {
    text: Vec<u8>,
}

impl Reply {
    pub(crate) fn ok() -> Reply {
        Reply {
            text: b"{\"ok\":true".to_vec(),
        }
    }

    pub(crate) fn error(why: &str) -> String {
        let mut text = b"{\"ok\":false,\"error\":".to_vec();
        let _ = write_string(&mut text, why);
        text.push(b'}');
        String::from_utf8_lossy(&text).into_owned()
    }

    fn key(mut self, key: &str) -> Reply {
        self.text.push(b',');
        let _ = write_string(&mut self.text, key);
        self.text.push(b':');
        self
    }

    pub(crate) fn text(self, key: &str, value: &str) -> Reply {
        let mut reply = self.key(key);
        let _ = write_string(&mut reply.text, value);
        reply
    }

    /// A number, or `null` for none.
    pub(crate) fn number(self, key: &str, value: Option<u64>) -> Reply {
        let mut reply = self.key(key);
        match value {
            Some(n) => reply.text.extend_from_slice(n.to_string().as_bytes()),
            None => reply.text.extend_from_slice(b"null"),
        }
        reply
    }

    pub(crate) fn flag(self, key: &str, value: bool) -> Reply {
        let mut reply = self.key(key);
        reply
            .text
            .extend_from_slice(if value { b"true" } else { b"false" });
        reply
    }

    /// A value that is JSON already: a stats record.
    pub(crate) fn raw(self, key: &str, json: &str) -> Reply {
        let mut reply = self.key(key);
        reply.text.extend_from_slice(json.as_bytes());
        reply
    }

    pub(crate) fn done(mut self) -> String {
        self.text.push(b'}');
        String::from_utf8_lossy(&self.text).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_one_json_object() {
        let reply = Reply::ok()
            .text("side", "out")
            .number("rate_Bps", None)
            .flag("paused_in", true)
            .raw("stats", "{\"a\":1}")
            .done();
        assert_eq!(
            reply,
            r#"{"ok":true,"side":"out","rate_Bps":null,"paused_in":true,"stats":{"a":1}}"#
        );
        assert_eq!(
            Reply::error("bad \"x\""),
            r#"{"ok":false,"error":"bad \"x\""}"#
        );
    }
}
