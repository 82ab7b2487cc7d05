//! Load generators that measure sockit's services (and anyone else's).

pub mod echo;
pub mod fanout;
pub mod load;
pub mod stats;
pub mod udp;
