// Moved to the port; kept so that older imports still resolve while they are updated.
export { GlobalPosition } from '../../ports/position.js';
