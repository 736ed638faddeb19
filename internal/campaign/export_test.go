package campaign

// SlotOf exposes slotOf to the external tests, which pick users by slot.
var SlotOf = slotOf
