"""The double-entry ledger every money movement is posted to (balances, escrow, the outside
world), below accounts and bookings, which both post to it."""
