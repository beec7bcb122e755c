"""Server-rendered pages. One module per page family; each view calls the apps' selectors/services."""
