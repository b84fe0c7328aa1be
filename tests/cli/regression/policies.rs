//! Overload policies and the stall watch: what each promises under a slow or stopped consumer.
