// Mover runtime: placeholder until the runtime lands.
namespace tierflow::mover {}
