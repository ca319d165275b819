//! An execution's bound parameter values, as a recording and a reviewer
//! see them. Why: every execution's values were copied into a string
//! each, for a recording that only writes them out once; a protocol now
//! lends them where they lie, decoded as they are written, and they are
//! copied only where they must outlive the message (a held execution).
//!
//! This module must never show a value other than as the protocol's
//! decoder shows it: lent and owned values of one execution read the
//! same.

/// Values a protocol lends from the message that bound them.
pub trait LentValues: std::fmt::Debug {
    /// Calls `f` with each value as shown (`None`: NULL), in order.
    fn each(&self, f: &mut dyn FnMut(Option<&str>));
}

/// An execution's parameter values.
#[derive(Debug, Clone, Copy)]
pub enum Parameters<'a> {
    /// Decoded already.
    Values(&'a [Option<String>]),
    /// Decoded as they are read.
    Lent(&'a dyn LentValues),
}

impl Parameters<'_> {
    /// Calls `f` with each value (`None`: NULL), in order.
    pub fn each(self, mut f: impl FnMut(Option<&str>)) {
        match self {
            Parameters::Values(values) => values.iter().for_each(|v| f(v.as_deref())),
            Parameters::Lent(values) => values.each(&mut f),
        }
    }

    /// The values, copied.
    pub fn to_vec(self) -> Vec<Option<String>> {
        match self {
            Parameters::Values(values) => values.to_vec(),
            Parameters::Lent(_) => {
                let mut out = Vec::new();
                self.each(|v| out.push(v.map(str::to_owned)));
                out
            }
        }
    }
}
