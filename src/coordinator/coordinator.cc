// Coordinator: placeholder until the loop lands.
namespace tierflow::coordinator {}
