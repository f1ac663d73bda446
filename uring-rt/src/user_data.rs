//! `user_data` of every SQE: `kind: u8 | generation: u24 | index: u32`. No
//! magic numbers: the completion loop dispatches on [`Kind`] and looks
//! `index` up in the table that owns that kind of operation. Operations on
//! a connection slot also carry the slot's generation (its low 24 bits),
//! so a completion can never be matched to a later connection in the same
//! slot; other kinds leave it 0.

/// Declares [`Kind`] and its byte mapping from one table, so the two can
/// never disagree (and the round-trip test covers every kind).
macro_rules! kinds {
    ($($(#[doc = $doc:literal])* $name:ident = $v:literal,)+) => {
        /// What an in-flight operation is; the high byte of its `user_data`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub(crate) enum Kind {
            $($(#[doc = $doc])* $name = $v,)+
        }

        impl Kind {
            /// Every kind, in table order.
            #[cfg(test)]
            pub(crate) const ALL: &'static [Kind] = &[$(Kind::$name),+];

            fn from_u8(v: u8) -> Option<Kind> {
                match v {
                    $($v => Some(Kind::$name),)+
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    /// Multishot RECVMSG on UDP socket `index`.
    UdpRecv = 1,
    /// SENDMSG from send slot `index`.
    UdpSend = 2,
    /// ACCEPT on listener `index` into its address slot `generation`.
    Accept = 3,
    /// Multishot RECV on connection slot `index`.
    TcpRecv = 4,
    /// SEND/SENDMSG of connection slot `index`'s outbound chunks.
    TcpSend = 5,
    /// TIMEOUT of timer `index`.
    Timer = 6,
    /// READ of the signalfd (worker 0 only).
    Signal = 7,
    /// A wake-up posted into this ring by another worker's MSG_RING, or the
    /// READ of this worker's wake eventfd.
    Wake = 8,
    /// The sender-side completion of a MSG_RING we issued.
    MsgRingSent = 9,
    /// An ASYNC_CANCEL we issued (its result is only counted).
    Cancel = 10,
    /// A tick TIMEOUT used while draining sends at stop.
    Tick = 11,
    /// The TIMEOUT that wakes the worker once a deadline tick while any
    /// connection deadline is set.
    Deadline = 12,
    /// CLOSE of connection slot `index`'s socket.
    TcpClose = 13,
    /// The back-off TIMEOUT after listener `index`'s ACCEPT failed for
    /// want of descriptors or memory.
    AcceptRetry = 14,
    /// FILES_UPDATE that puts connection slot `index`'s socket in the file
    /// table, or the CLOSE that takes it out (a completion only on failure).
    TcpFile = 15,
}

/// Packed `kind: u8 | generation: u24 | index: u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UserData(pub(crate) u64);

/// Generations are kept modulo 2^24 (what fits beside kind and index).
pub(crate) const GENERATION_MASK: u32 = (1 << 24) - 1;

impl UserData {
    /// Pack an op that is not tied to a connection; `index` is truncated to
    /// 32 bits (indices are slot numbers, far smaller).
    pub(crate) fn new(kind: Kind, index: usize) -> UserData {
        UserData::conn(kind, index, 0)
    }

    /// Pack an op on connection slot `index` of generation `generation`.
    pub(crate) fn conn(kind: Kind, index: usize, generation: u32) -> UserData {
        UserData(
            (u64::from(kind as u8) << 56)
                | (u64::from(generation & GENERATION_MASK) << 32)
                | (index as u64 & u64::from(u32::MAX)),
        )
    }

    /// The kind, or `None` for a value we never issued.
    pub(crate) fn kind(self) -> Option<Kind> {
        Kind::from_u8((self.0 >> 56) as u8)
    }

    /// The index within the kind's table.
    pub(crate) fn index(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }

    /// The connection generation (0 for ops not tied to a connection).
    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32 & GENERATION_MASK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        for &kind in Kind::ALL {
            for index in [0usize, 1, 4095, u32::MAX as usize] {
                for generation in [0u32, 1, GENERATION_MASK] {
                    let u = UserData::conn(kind, index, generation);
                    assert_eq!(u.kind(), Some(kind));
                    assert_eq!(u.index(), index);
                    assert_eq!(u.generation(), generation);
                }
            }
        }
        assert_eq!(UserData::conn(Kind::TcpRecv, 3, 1 << 24).generation(), 0);
        assert_eq!(UserData(0).kind(), None);
        assert_eq!(UserData(u64::MAX).kind(), None);
    }
}
