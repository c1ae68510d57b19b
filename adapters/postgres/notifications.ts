export const eventLogChannel = 'codexk8s_events';
