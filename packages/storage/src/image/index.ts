export * from './types';
export * from './reference';
export * from './platform';
export * from './store';
export * from './decode';
