"""Each module here composes one phase (`build(settings)`), named in the catalog; besides them, the
settings (the only reader of config), the catalog, and the lab's namespace names."""
