// Public API of this package; filled as modules land.
export {};
