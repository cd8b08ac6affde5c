export { LayerStore, chainID, type LayerStoreOptions, type StoreRepairReport } from './store';
export { MountState, type MountTable } from './mountstate';
export { DiffIDMismatchError, LayerNotFoundError, type CommitOptions, type CreateRWOptions, type Layer, type RWLayer } from './types';
