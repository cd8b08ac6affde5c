export * from './types';
export * from './reference';
export * from './platform';
export * from './store';
export * from './decode';
export * from './model';
export { StoreLayer, isImageId, openOwnBlobVerified, storeImage, storeImages, storeLayers } from './local';
