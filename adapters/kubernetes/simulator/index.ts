export { startKubeSimulator, type KubeSimulator, type KubeSimulatorOptions, type KubeSimulatorState } from './server.js';
export { outcomes, outcomeAnnotation, type Outcome } from './kubelet.js';
