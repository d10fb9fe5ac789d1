"""Alert routing and delivery (see DESIGN §7); filled in by the alerts issue."""
