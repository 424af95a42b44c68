//! The four OAuth scopes of the sandbox and the set type that carries a grant through codes,
//! tokens and webhook subscriptions.

use std::fmt;

/// One sandbox scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    ShopRead,
    ShopWrite,
    CrmRead,
    CrmWrite,
}

impl Scope {
    const ALL: [Scope; 4] = [
        Scope::ShopRead,
        Scope::ShopWrite,
        Scope::CrmRead,
        Scope::CrmWrite,
    ];

    /// The wire name, as in `scope=shop.read`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scope::ShopRead => "shop.read",
            Scope::ShopWrite => "shop.write",
            Scope::CrmRead => "crm.read",
            Scope::CrmWrite => "crm.write",
        }
    }

    /// What the scope allows, in words for the consent page.
    pub(crate) fn description(self) -> &'static str {
        match self {
            Scope::ShopRead => "See your Sandbox Shop customers and orders",
            Scope::ShopWrite => "Create and edit your Sandbox Shop customers",
            Scope::CrmRead => "See your Sandbox CRM contacts and companies",
            Scope::CrmWrite => "Create and edit your Sandbox CRM contacts and companies",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Scopes(u8);

impl Scopes {
    /// Parses a space-separated scope list. Err carries the first unknown scope; an empty list
    /// is an empty set.
    pub(crate) fn parse(list: &str) -> Result<Scopes, String> {
        let mut set = Scopes::default();
        for word in list.split(' ').filter(|w| !w.is_empty()) {
            let scope = Scope::ALL
                .into_iter()
                .find(|s| s.name() == word)
                .ok_or_else(|| word.to_owned())?;
            set.0 |= scope.bit();
        }
        Ok(set)
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub(crate) fn is_subset_of(self, other: Scopes) -> bool {
        self.0 & !other.0 == 0
    }

    /// The scopes in canonical order.
    pub(crate) fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_in_canonical_order() {
        let s = Scopes::parse("crm.write  shop.read").expect("valid scopes");
        assert_eq!(s.to_string(), "shop.read crm.write");
        assert!(s.contains(Scope::CrmWrite) && !s.contains(Scope::CrmRead));
        assert_eq!(Scopes::parse("shop.read admin"), Err("admin".to_owned()));
        assert!(Scopes::parse("").expect("empty is fine").is_empty());
        assert!(Scopes::parse("shop.read")
            .unwrap_or_default()
            .is_subset_of(s));
    }
}
