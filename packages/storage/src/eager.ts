// The modules every command loads: index.ts and entry.ts both export these (entry.ts adds the lazy
// transports, runtime and fsck), so the list is kept once.
export * from './errors';
export * from './names';
export * from './digest';
export * from './atomic';
export * from './fsmode';
export * from './lock';
export * from './content';
export * from './image';
export * from './archive';
export * from './store';
export * from './rootless';
export * from './containers';
export * from './drivers';
export * from './layers';
export * from './cache';
export * from './runtime/binfmt';
