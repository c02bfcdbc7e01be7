"""Optional integrations with other libraries; each is imported explicitly by its users."""
