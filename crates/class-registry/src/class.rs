//! The `LifetimeClass` trait: what the table needs from the user's enum.

/// A lifetime class: a fieldless enum whose variants name groups of objects that live and die together.
///
/// Implement it with [`lifetime_class!`](crate::lifetime_class) on an enum deriving `Clone`, `Copy`,
/// `strum::EnumCount` and `strum::IntoStaticStr`. Variants keep their default discriminants
/// (0, 1, 2, ...): the discriminant is the class's index in the table.
pub trait LifetimeClass:
    Copy + Send + Sync + strum::EnumCount + Into<&'static str> + 'static
{
    /// The index of this class in the table (its discriminant).
    fn index(self) -> usize;

    /// The variant's name.
    fn name(self) -> &'static str {
        self.into()
    }
}

/// Makes a strum-derived enum a [`LifetimeClass`]: `lifetime_class!(Life);`
#[macro_export]
macro_rules! lifetime_class {
    ($class:ty) => {
        impl $crate::LifetimeClass for $class {
            #[inline(always)]
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}
