export { binding } from './binding';
